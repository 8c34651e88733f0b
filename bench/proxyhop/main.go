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
	host := flag.String("host", "", "internal: Host header of the load")

	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured length of each load run")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unrecorded warm-up before each load run")
	flag.StringVar(&o.conns, "conns", "1,10,100", "connection counts of the closed-loop runs")
	flag.StringVar(&o.kinds, "kinds", "direct,rp,qp0,qp10,chain0,chain10,server0,server10", "what to measure (server: the root zeroscale.Server, warm)")
	flag.IntVar(&o.reps, "reps", 1, "interleaved repetitions of every closed-loop run (medians reported)")
	flag.StringVar(&o.loadgen, "load", "auto", "closed-loop load generator: wrk, go (the in-process Go client) or auto (wrk when on PATH)")
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
		err = runProxy(*kind, *addr, *upstream, *delay)
	case "load":
		err = runLoad(*target, *host, *conns, o.duration, *perSecond)
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
	reps             int
	loadgen          string
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
	wrk      string   // wrk's path when it generates the closed-loop load
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

// load runs the load generator and decodes its result: wrk for closed
// loops when chosen, else the Go client (open loops always).
func (r *runner) load(url, host string, conns int, d time.Duration, perSecond int) (loadResult, error) {
	if r.wrk != "" && perSecond == 0 {
		return r.wrkLoad(url, host, conns, d)
	}
	cmd := r.command(r.loadCPU, "-role=load", "-url="+url, "-host="+host, "-c="+strconv.Itoa(conns),
		"-duration="+d.String(), "-rate="+strconv.Itoa(perSecond))
	out, err := cmd.Output()
	if err != nil {
		return loadResult{}, fmt.Errorf("load %s c=%d: %w", url, conns, err)
	}
	var res loadResult
	return res, json.Unmarshal(out, &res)
}

// waitReady polls url (with Host host when set) every millisecond until
// it answers 200.
func waitReady(url, host string, limit time.Duration) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		req, err := http.NewRequest(http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		req.Host = host
		resp, err := client.Do(req)
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

// summary is the median over the reps of one (app, kind, conns).
type summary struct {
	app, kind                string
	conns, reps              int
	rps, rpsMin, rpsMax      float64
	p50, p90, p99            time.Duration
	proxyCPU, appCPU, rssMiB float64 // µs/request, µs/request, MiB
	errs                     int64
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func summarize(cells []cell) []summary {
	var out []summary
	idx := map[string]int{}
	var groups [][]cell
	for _, c := range cells {
		k := fmt.Sprintf("%s/%s/%d", c.app, c.kind, c.conns)
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], c)
	}
	for _, g := range groups {
		var rps, p50, p90, p99, pc, ac, rss []float64
		var errs int64
		for _, c := range g {
			rps = append(rps, c.rps())
			p50 = append(p50, float64(c.res.P50))
			p90 = append(p90, float64(c.res.P90))
			p99 = append(p99, float64(c.res.P99))
			pc = append(pc, c.cpuPerReq(c.proxyCPU))
			ac = append(ac, c.cpuPerReq(c.appCPU))
			rss = append(rss, float64(c.rssKiB)/1024)
			errs += c.res.Errors + c.res.Non2xx
		}
		out = append(out, summary{
			app: g[0].app, kind: g[0].kind, conns: g[0].conns, reps: len(g),
			rps: median(rps), rpsMin: slices.Min(rps), rpsMax: slices.Max(rps),
			p50: time.Duration(median(p50)), p90: time.Duration(median(p90)), p99: time.Duration(median(p99)),
			proxyCPU: median(pc), appCPU: median(ac), rssMiB: median(rss), errs: errs,
		})
	}
	return out
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
	gen := "in-process Go client, keep-alive, closed loop"
	switch o.loadgen {
	case "wrk", "auto":
		path, err := exec.LookPath("wrk")
		if err == nil {
			r.wrk = path
			gen = "wrk -t1 (C, out of process), keep-alive, closed loop"
		} else if o.loadgen == "wrk" {
			return fmt.Errorf("-load wrk: %w (apt-get install wrk)", err)
		}
	case "go":
	default:
		return fmt.Errorf("-load %q: want wrk, go or auto", o.loadgen)
	}
	if o.reps < 1 {
		return fmt.Errorf("-reps %d: want ≥ 1", o.reps)
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
	fmt.Printf("proxyhop: %s per run after %s warm-up, %d interleaved reps (medians), pin=%s, load generator: %s\n\n",
		o.duration, o.warmup, o.reps, o.pin, gen)

	var cells []cell
	for rep := range o.reps {
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
				fmt.Fprintf(os.Stderr, "rep %d/%d\n", rep+1, o.reps)
				cs, err := r.measureKind(app, kind, up, delay, connList)
				if err != nil {
					up.stop()
					return err
				}
				cells = append(cells, cs...)
			}
			up.stop()
		}
	}
	printThroughput(summarize(cells))

	if err := r.readiness(kinds); err != nil {
		return err
	}
	if o.openRate > 0 {
		return r.openLoop(kinds, openConns)
	}
	return nil
}

// isServer reports whether kind is the root Server, which starts its
// own app instance.
func isServer(kind string) bool { return strings.HasPrefix(kind, "server") }

// proxied starts kind in front of up, or returns nil for direct; it
// returns the URL and Host header to load.
func (r *runner) proxied(kind string, up *child, delay time.Duration) (*child, string, string, error) {
	if kind == "direct" {
		return nil, "http://" + up.addr + "/", "", nil
	}
	p, err := r.start("-role=proxy", "-kind="+kind, "-upstream="+up.addr, "-delay="+delay.String())
	if err != nil {
		return nil, "", "", err
	}
	url, host := "http://"+p.addr+"/", ""
	if isServer(kind) {
		host = serverHost
	}
	if err := waitReady(url, host, 10*time.Second); err != nil {
		p.stop()
		return nil, "", "", err
	}
	return p, url, host, nil
}

func (r *runner) measureKind(app, kind string, up *child, delay time.Duration, connList []int) ([]cell, error) {
	p, url, host, err := r.proxied(kind, up, delay)
	if err != nil {
		return nil, err
	}
	appPID := up.pid()
	if p != nil {
		defer p.stop()
		if isServer(kind) {
			// The Server's instance is its child process.
			if appPID, err = onlyChild(p.pid()); err != nil {
				return nil, err
			}
		}
	}
	var cells []cell
	for _, c := range connList {
		if _, err := r.load(url, host, c, r.o.warmup, 0); err != nil {
			return nil, err
		}
		cl := cell{app: app, kind: kind, conns: c}
		appBefore, _ := cpuTime(appPID)
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
		res, err := r.load(url, host, c, r.o.duration, 0)
		<-mid
		if err != nil {
			return nil, err
		}
		cl.res = res
		appAfter, _ := cpuTime(appPID)
		cl.appCPU = appAfter - appBefore
		if p != nil {
			proxyAfter, _ := cpuTime(p.pid())
			cl.proxyCPU = proxyAfter - proxyBefore
			_, cl.hwmKiB, _ = memKiB(p.pid())
		}
		fmt.Fprintf(os.Stderr, "  %-7s %-8s c=%-3d %9.0f req/s  p50 %v  p99 %v  errors %d  non-2xx %d\n",
			app, kind, c, cl.rps(), res.P50, res.P99, res.Errors, res.Non2xx)
		cells = append(cells, cl)
	}
	return cells, nil
}

func printThroughput(sums []summary) {
	find := func(app, kind string, conns int) (summary, bool) {
		for _, c := range sums {
			if c.app == app && c.kind == kind && c.conns == conns {
				return c, true
			}
		}
		return summary{}, false
	}
	ratio := func(a, b float64) string {
		if b == 0 {
			return "—"
		}
		return fmt.Sprintf("%.2f", a/b)
	}
	fmt.Println("## Closed loop: throughput, latency, proxy CPU and RSS")
	fmt.Println("(medians over the reps, req/s range in brackets; x direct and x rp are ratios to the direct and plain-ReverseProxy rows of the same app and connections; CPU is the proxy (host) process's utime+stime per request, the app's separately; RSS is VmRSS mid-run)")
	fmt.Println()
	fmt.Println("(core req/s = 1e6 / (proxy + app CPU µs per request): what one core running both could serve, CPU-bound; on a shared machine it is steadier than req/s)")
	fmt.Println()
	tw := newTable("app\tconns\tkind\treq/s\t[min–max]\tx direct\tx rp\tp50 ms\tp90 ms\tp99 ms\tp99 x rp\tproxy CPU µs/req\tCPU x rp\tapp CPU µs/req\tcore req/s\tcore x rp\tRSS MiB\tRSS x rp\terr+non2xx\t")
	for _, c := range sums {
		d, _ := find(c.app, "direct", c.conns)
		rp, hasRP := find(c.app, "rp", c.conns)
		cpu, rss := "—", "—"
		cpuX, rssX, p99X := "—", "—", "—"
		if c.kind != "direct" {
			cpu = fmt.Sprintf("%.1f", c.proxyCPU)
			rss = fmt.Sprintf("%.1f", c.rssMiB)
			if hasRP {
				cpuX = ratio(c.proxyCPU, rp.proxyCPU)
				rssX = ratio(c.rssMiB, rp.rssMiB)
			}
		}
		rpX, coreX := "—", "—"
		core := capacity(c)
		if hasRP {
			rpX = ratio(c.rps, rp.rps)
			p99X = ratio(float64(c.p99), float64(rp.p99))
			coreX = ratio(core, capacity(rp))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.0f\t%.0f–%.0f\t%s\t%s\t%.3f\t%.3f\t%.3f\t%s\t%s\t%s\t%.1f\t%.0f\t%s\t%s\t%s\t%d\t\n",
			c.app, c.conns, c.kind, c.rps, c.rpsMin, c.rpsMax, ratio(c.rps, d.rps), rpX,
			ms(c.p50), ms(c.p90), ms(c.p99), p99X,
			cpu, cpuX, c.appCPU, core, coreX, rss, rssX, c.errs)
	}
	_ = tw.Flush()
	fmt.Println()
}

// capacity is the requests per second one core running the proxy and
// the app (as -pin split does) could serve if CPU-bound: 1e6 / their CPU
// µs per request.
func capacity(s summary) float64 {
	if us := s.proxyCPU + s.appCPU; us > 0 {
		return 1e6 / us
	}
	return 0
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
		if kind == "direct" || isServer(kind) {
			continue // the Server's start-up is the cold-start e2e's
		}
		var readies []float64
		var idle int64
		for range r.o.starts {
			t0 := time.Now()
			p, err := r.start("-role=proxy", "-kind="+kind, "-upstream="+up.addr)
			if err != nil {
				return err
			}
			err = waitReady("http://"+p.addr+"/", "", 10*time.Second)
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
			p, url, host, err := r.proxied(kind, up, 0)
			if err != nil {
				return err
			}
			if _, err := r.load(url, host, c, r.o.warmup, r.o.openRate); err != nil {
				return err
			}
			res, err := r.load(url, host, c, r.o.duration, r.o.openRate)
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
