package main

import (
	"bufio"

	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

func main() {
	role := flag.String("role", "", "internal: upstream, proxy or load")
	addr := flag.String("addr", "127.0.0.1:0", "internal: listen address")
	delay := flag.Duration("delay", 0, "internal: upstream reply delay")
	kind := flag.String("kind", "", "internal: proxy kind")
	upstream := flag.String("upstream", "", "internal: upstream host:port")
	target := flag.String("url", "", "internal: load target")
	conns := flag.Int("c", 1, "internal: load connections")
	perSecond := flag.Int("rate", 0, "internal: open-loop requests per second (0 = closed loop)")

	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured length of each load run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded warm-up before each load run")
	flag.StringVar(&o.conns, "conns", "1,10,100", "connection counts of the closed-loop runs")
	flag.StringVar(&o.kinds, "kinds", "direct,rp,qp0,qp10,chain0,chain10", "what to measure")
	flag.StringVar(&o.upstreams, "upstreams", "fast,sleep10", "app variants: fast (instant reply), sleep10 (10 ms)")
	flag.StringVar(&o.pin, "pin", "split", "CPU pinning: split (load on CPU 0, app+proxy on CPU 1) or shared")
	flag.IntVar(&o.starts, "starts", 5, "process starts per kind for the ready-after-exec figure")
	flag.IntVar(&o.openRate, "open-rate", 1000, "requests per second of the open-loop latency runs (0 = skip)")
	flag.StringVar(&o.openConns, "open-conns", "10,100", "connection counts of the open-loop runs")
	flag.Parse()

	var err error
	switch *role {
	case "upstream":
		err = runUpstream(*addr, *delay)
	case "proxy":
		err = runProxy(*kind, *addr, *upstream)
	case "load":
		err = runLoad(*target, *conns, o.duration, *perSecond)
	case "":
		err = orchestrate(o)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		log.Fatal(err)
	}
}

type options struct {
	duration, warmup time.Duration
	conns, kinds     string
	upstreams, pin   string
	starts, openRate int
	openConns        string
}

// child is a running role process.
type child struct {
	cmd  *exec.Cmd
	addr string
}

func (c *child) pid() int { return c.cmd.Process.Pid }

func (c *child) stop() {
	_ = c.cmd.Process.Kill()
	_ = c.cmd.Wait()
}

type runner struct {
	exe      string
	o        options
	loadCPU  []string // command prefix pinning the load generator
	proxyCPU []string // command prefix pinning app and proxy
}

func (r *runner) command(prefix []string, args ...string) *exec.Cmd {
	argv := append(append(slices.Clone(prefix), r.exe), args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stderr = os.Stderr
	setParentDeathSignal(cmd)
	return cmd
}

// start runs a listening role and waits for its LISTEN line.
func (r *runner) start(args ...string) (*child, error) {
	cmd := r.command(r.proxyCPU, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, fmt.Errorf("%v: no LISTEN line: %w", args, err)
	}
	go func() { _, _ = io.Copy(io.Discard, out) }()
	return &child{cmd: cmd, addr: strings.TrimSpace(strings.TrimPrefix(line, "LISTEN "))}, nil
}

// load runs the load generator and decodes its result.
func (r *runner) load(url string, conns int, d time.Duration, perSecond int) (loadResult, error) {
	cmd := r.command(r.loadCPU, "-role=load", "-url="+url, "-c="+strconv.Itoa(conns),
		"-duration="+d.String(), "-rate="+strconv.Itoa(perSecond))
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("load %s c=%d: %w", url, conns, err)
	}
	var res loadResult
	return res, json.Unmarshal(out, &res)
}

// waitReady polls url every millisecond until it answers 200.
func waitReady(url string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s not ready after %v", url, limit)
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > 10000 {
			return nil, fmt.Errorf("%q: want a comma-separated list of counts from 1 to 10000", s)
		}
		out = append(out, n)
	}
	return out, nil
}

func upstreamDelay(name string) (time.Duration, error) {
	switch name {
	case "fast":
		return 0, nil
	case "sleep10":
		return 10 * time.Millisecond, nil
	}
	return 0, fmt.Errorf("-upstreams: unknown app %q (want fast or sleep10)", name)
}

// cell is one measured (app, kind, conns) run.
type cell struct {
	app, kind        string
	conns            int
	res              loadResult
	proxyCPU, appCPU time.Duration
	rssKiB, hwmKiB   int64
}

func (c cell) rps() float64 { return float64(c.res.Requests) / c.res.Elapsed.Seconds() }

func (c cell) cpuPerReq(d time.Duration) float64 {
	if c.res.Requests == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(c.res.Requests)
}

func orchestrate(o options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	r := &runner{exe: exe, o: o}
	switch o.pin {
	case "split":
		if _, err := exec.LookPath("taskset"); err != nil {
			return fmt.Errorf("-pin split needs taskset (util-linux): %w", err)
		}
		r.loadCPU = []string{"taskset", "-c", "0"}
		r.proxyCPU = []string{"taskset", "-c", "1"}
	case "shared":
	default:
		return fmt.Errorf("-pin %q: want split or shared", o.pin)
	}
	connList, err := ints(o.conns)
	if err != nil {
		return fmt.Errorf("-conns %w", err)
	}
	openConns, err := ints(o.openConns)
	if err != nil {
		return fmt.Errorf("-open-conns %w", err)
	}
	kinds := strings.Split(o.kinds, ",")
	fmt.Printf("proxyhop: %s per run after %s warm-up, pin=%s, load generator: in-process Go client, keep-alive, closed loop\n\n",
		o.duration, o.warmup, o.pin)

	var cells []cell
	for _, app := range strings.Split(o.upstreams, ",") {
		delay, err := upstreamDelay(app)
		if err != nil {
			return err
		}
		up, err := r.start("-role=upstream", "-delay="+delay.String())
		if err != nil {
			return err
		}
		for _, kind := range kinds {
			cs, err := r.measureKind(app, kind, up, connList)
			if err != nil {
				up.stop()
				return err
			}
			cells = append(cells, cs...)
		}
		up.stop()
	}
	printThroughput(cells)

	if err := r.readiness(kinds); err != nil {
		return err
	}
	if o.openRate > 0 {
		return r.openLoop(kinds, openConns)
	}
	return nil
}

// proxied starts kind in front of up, or returns nil for direct.
func (r *runner) proxied(kind string, up *child) (*child, string, error) {
	if kind == "direct" {
		return nil, "http://" + up.addr + "/", nil
	}
	p, err := r.start("-role=proxy", "-kind="+kind, "-upstream="+up.addr)
	if err != nil {
		return nil, "", err
	}
	url := "http://" + p.addr + "/"
	if err := waitReady(url, 10*time.Second); err != nil {
		p.stop()
		return nil, "", err
	}
	return p, url, nil
}

func (r *runner) measureKind(app, kind string, up *child, connList []int) ([]cell, error) {
	p, url, err := r.proxied(kind, up)
	if err != nil {
		return nil, err
	}
	if p != nil {
		defer p.stop()
	}
	var cells []cell
	for _, c := range connList {
		if _, err := r.load(url, c, r.o.warmup, 0); err != nil {
			return nil, err
		}
		cl := cell{app: app, kind: kind, conns: c}
		appBefore, _ := cpuTime(up.pid())
		var proxyBefore time.Duration
		if p != nil {
			proxyBefore, _ = cpuTime(p.pid())
		}
		// Sample RSS mid-run, as the reference did.
		mid := make(chan struct{})
		go func() {
			defer close(mid)
			time.Sleep(r.o.duration / 2)
			if p != nil {
				cl.rssKiB, _, _ = memKiB(p.pid())
			}
		}()
		res, err := r.load(url, c, r.o.duration, 0)
		<-mid
		if err != nil {
			return nil, err
		}
		cl.res = res
		appAfter, _ := cpuTime(up.pid())
		cl.appCPU = appAfter - appBefore
		if p != nil {
			proxyAfter, _ := cpuTime(p.pid())
			cl.proxyCPU = proxyAfter - proxyBefore
			_, cl.hwmKiB, _ = memKiB(p.pid())
		}
		fmt.Fprintf(os.Stderr, "  %-7s %-8s c=%-3d %9.0f req/s  p50 %v  errors %d  non-2xx %d\n",
			app, kind, c, cl.rps(), res.P50, res.Errors, res.Non2xx)
		cells = append(cells, cl)
	}
	return cells, nil
}

func printThroughput(cells []cell) {
	find := func(app, kind string, conns int) (cell, bool) {
		for _, c := range cells {
			if c.app == app && c.kind == kind && c.conns == conns {
				return c, true
			}
		}
		return cell{}, false
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Println("## Closed loop: throughput, latency, proxy CPU and RSS")
	fmt.Println("(x direct and x rp are ratios to the direct and plain-ReverseProxy rows of the same app and connections; CPU is the proxy process's utime+stime per request; RSS is VmRSS mid-run)")
	fmt.Println()
	tw := newTable("app\tconns\tkind\treq/s\tx direct\tx rp\tp50 ms\tp90 ms\tp99 ms\tadded p50 ms\tproxy CPU µs/req\tCPU x rp\tapp CPU µs/req\tRSS MiB\tRSS x rp\terr+non2xx\t")
	for _, c := range cells {
		d, _ := find(c.app, "direct", c.conns)
		rp, hasRP := find(c.app, "rp", c.conns)
		cpu, rss := "—", "—"
		cpuX, rssX := "—", "—"
		if c.kind != "direct" {
			cpu = fmt.Sprintf("%.1f", c.cpuPerReq(c.proxyCPU))
			rss = fmt.Sprintf("%.1f", float64(c.rssKiB)/1024)
			if hasRP {
				cpuX = ratio(c.cpuPerReq(c.proxyCPU), rp.cpuPerReq(rp.proxyCPU))
				rssX = ratio(float64(c.rssKiB), float64(rp.rssKiB))
			}
		}
		rpX := "—"
		if hasRP {
			rpX = ratio(c.rps(), rp.rps())
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%s\t%s\t%.3f\t%.3f\t%.3f\t%.3f\t%s\t%s\t%.1f\t%s\t%s\t%d\t\n",
			c.app, c.conns, c.kind, c.rps(), ratio(c.rps(), d.rps()), rpX,
			ms(c.res.P50), ms(c.res.P90), ms(c.res.P99), ms(c.res.P50-d.res.P50),
			cpu, cpuX, c.cpuPerReq(c.appCPU), rss, rssX, c.res.Errors+c.res.Non2xx)
	}
	_ = tw.Flush()
	fmt.Println()
}

// newTable returns a right-aligned table on stdout with its header row
// (tab-separated columns, each ending in a tab).
func newTable(header string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', tabwriter.AlignRight|tabwriter.Debug)
	fmt.Fprintln(tw, header)
	return tw
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// readiness measures exec -> first 200 through each proxy kind (the
// app already running), and idle RSS one second after.
func (r *runner) readiness(kinds []string) error {
	up, err := r.start("-role=upstream")
	if err != nil {
		return err
	}
	defer up.stop()
	fmt.Printf("## Ready after exec (median of %d starts, app already running; polled every 1 ms) and idle RSS\n\n", r.o.starts)
	tw := newTable("kind\tready ms p50\tmin\tmax\tx rp\tidle RSS MiB\t")
	var rpReady float64
	for _, kind := range kinds {
		if kind == "direct" {
			continue
		}
		var readies []float64
		var idle int64
		for range r.o.starts {
			t0 := time.Now()
			p, err := r.start("-role=proxy", "-kind="+kind, "-upstream="+up.addr)
			if err != nil {
				return err
			}
			err = waitReady("http://"+p.addr+"/", 10*time.Second)
			readies = append(readies, float64(time.Since(t0).Microseconds())/1000)
			if err == nil {
				time.Sleep(time.Second)
				idle, _, _ = memKiB(p.pid())
			}
			p.stop()
			if err != nil {
				return err
			}
		}
		slices.Sort(readies)
		med := readies[len(readies)/2]
		if kind == "rp" {
			rpReady = med
		}
		x := "—"
		if rpReady > 0 {
			x = fmt.Sprintf("%.2f", med/rpReady)
		}
		fmt.Fprintf(tw, "%s\t%.1f\t%.1f\t%.1f\t%s\t%.1f\t\n", kind, med, readies[0], readies[len(readies)-1], x, float64(idle)/1024)
	}
	_ = tw.Flush()
	fmt.Println()
	return nil
}

// openLoop measures latency at a fixed request rate, the Knative
// dataplane-probe way, against a fast app.
func (r *runner) openLoop(kinds []string, connList []int) error {
	up, err := r.start("-role=upstream")
	if err != nil {
		return err
	}
	defer up.stop()
	fmt.Printf("## Open loop at %d req/s, fast app: latency added over direct\n\n", r.o.openRate)
	tw := newTable("conns\tkind\treq/s\tp50 ms\tp95 ms\tp99 ms\tadded p95 ms\tadded p99 ms\terr+non2xx\t")
	for _, c := range connList {
		var direct loadResult
		for _, kind := range kinds {
			p, url, err := r.proxied(kind, up)
			if err != nil {
				return err
			}
			if _, err := r.load(url, c, r.o.warmup, r.o.openRate); err != nil {
				return err
			}
			res, err := r.load(url, c, r.o.duration, r.o.openRate)
			if p != nil {
				p.stop()
			}
			if err != nil {
				return err
			}
			if kind == "direct" {
				direct = res
			}
			fmt.Fprintf(tw, "%d\t%s\t%.0f\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t\n", c, kind,
				float64(res.Requests)/res.Elapsed.Seconds(), ms(res.P50), ms(res.P95), ms(res.P99),
				ms(res.P95-direct.P95), ms(res.P99-direct.P99), res.Errors+res.Non2xx)
		}
	}
	_ = tw.Flush()
	fmt.Println()
	return nil
}
