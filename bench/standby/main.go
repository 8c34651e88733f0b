package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

func main() {
	role := flag.String("role", "", "internal: app")
	thaws := flag.Int("thaws", 50, "freeze/thaw cycles measured")
	warm := flag.Int("warm", 5, "warm requests before each freeze (their median is the baseline)")
	idle := flag.Duration("idle", 60*time.Second, "wall time the frozen (and the running) app is left idle for the CPU figure")
	tick := flag.Duration("tick", 10*time.Millisecond, "the app's background work period (a timer wake-up and a little work), so that running and frozen differ in CPU; 0 = none")
	flag.Parse()
	var err error
	switch *role {
	case "app":
		err = serveApp(*tick)
	case "":
		err = run(*thaws, *warm, *idle, *tick)
	default:
		err = fmt.Errorf("unknown -role %q", *role)
	}
	if err != nil {
		log.Fatal(err)
	}
}

// serveApp is the measured app: it answers at once on $PORT and, every
// tick, wakes up for a little work (a housekeeping timer, say).
func serveApp(tick time.Duration) error {
	ln, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		return err
	}
	if tick > 0 {
		go func() {
			var sink [64]byte
			for range time.Tick(tick) {
				for i := range 20000 {
					sink[i%len(sink)]++
				}
			}
		}()
	}
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") }))
}

// stack is a Controller on the process backend, its activator served on
// loopback.
type stack struct {
	clk  *clocktesting.FakeClock
	ctl  *control.Controller
	url  string
	rev  string
	stop func()
}

func newStack(retention, tick time.Duration) (*stack, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	s := &stack{clk: clocktesting.NewFakeClock(time.Now())}
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	ctl, err := control.New(control.Options{
		NewProxiedBackend: func(drain backend.DrainFunc, qp queueproxy.Options) (backend.Backend, error) {
			return process.New(process.Options{Drain: drain, Proxy: process.QueueProxy(qp)})
		},
		Config:    cfg,
		Activator: activator.Options{Picker: pickOne{}},
		Clock:     s.clk,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		_ = ctl.Run(ctx)
	}()
	front := httptest.NewServer(ctl.Activator())
	s.ctl, s.url = ctl, front.URL
	s.stop = func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		_ = ctl.Shutdown(sctx)
		front.Close()
		cancel()
		<-ran
	}
	r, err := revision.New("standby", "standby-00001", 1, revision.Spec{
		Command: []string{exe, "-role", "app", "-tick", tick.String()},
		Scaling: revision.Scaling{
			IdleMode:         revision.IdleModeFreeze,
			StandbyRetention: new(retention),
			Window:           new(revision.WindowMin),
		},
	}, time.Now())
	if err == nil {
		err = ctl.Add(ctx, r)
	}
	if err != nil {
		s.stop()
		return nil, err
	}
	s.rev = r.Name()
	return s, nil
}

type pickOne struct{}

func (pickOne) PickRevision(*http.Request) (string, error) { return "standby-00001", nil }

// ttfb sends GET / and returns the time to the response's first byte.
func (s *stack) ttfb(c *http.Client) (time.Duration, error) {
	start := time.Now()
	res, err := c.Get(s.url)
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("status %d", res.StatusCode)
	}
	return d, nil
}

// until steps the fake clock a second at a time (letting the
// Controller's loops run in between) until cond holds.
func (s *stack) until(what string, cond func(control.Status) bool) error {
	for range 3600 {
		st, err := s.ctl.Status(s.rev)
		if err != nil {
			return err
		}
		if cond(st) {
			return nil
		}
		s.clk.Step(time.Second)
		time.Sleep(2 * time.Millisecond)
	}
	return errors.New("not " + what + " within an hour of fake time")
}

// pids returns the app processes' pids (the engine's "pid N" detail).
func (s *stack) pids() ([]int, error) {
	st, err := s.ctl.Backend().(backend.StatusReporter).Status(context.Background(), s.rev)
	if err != nil {
		return nil, err
	}
	var out []int
	for _, in := range st.Instances {
		if p, ok := strings.CutPrefix(in.Detail, "pid "); ok {
			n, _ := strconv.Atoi(p)
			out = append(out, n)
		}
	}
	return out, nil
}

func run(thaws, warm int, idle, tick time.Duration) error {
	s, err := newStack(revision.MaxStandbyRetention, tick)
	if err != nil {
		return err
	}
	defer s.stop()
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}

	cold, err := s.ttfb(c) // from zero: a process start
	if err != nil {
		return fmt.Errorf("cold start: %w", err)
	}
	var extra, thawed, warms []time.Duration
	for i := range thaws {
		var w []time.Duration
		for range warm {
			d, err := s.ttfb(c)
			if err != nil {
				return fmt.Errorf("warm request: %w", err)
			}
			w = append(w, d)
		}
		base := median(w)
		warms = append(warms, base)
		if err := s.until("frozen", func(st control.Status) bool { return st.Frozen }); err != nil {
			return err
		}
		pids, err := s.pids()
		if err != nil || len(pids) != 1 {
			return fmt.Errorf("cycle %d: app pids %v (%v), want one", i, pids, err)
		}
		// Status says Frozen from the moment the freeze begins (the
		// drain comes first): wait for the kernel to show it stopped.
		if err := waitState(pids[0], "T"); err != nil {
			return fmt.Errorf("cycle %d: %w", i, err)
		}
		d, err := s.ttfb(c)
		if err != nil {
			return fmt.Errorf("thaw: %w", err)
		}
		thawed = append(thawed, d)
		extra = append(extra, d-base)
		after, _ := s.pids()
		if !slices.Equal(after, pids) {
			return fmt.Errorf("cycle %d: the thaw runs pids %v, want the frozen %v", i, after, pids)
		}
	}

	// Idle CPU: the same app, frozen and not, across the same wall time.
	pids, _ := s.pids()
	if len(pids) != 1 {
		return fmt.Errorf("app pids %v, want one", pids)
	}
	pid := pids[0]
	runningCPU, err := cpuAcross(pid, idle)
	if err != nil {
		return err
	}
	if err := s.until("frozen", func(st control.Status) bool { return st.Frozen }); err != nil {
		return err
	}
	if err := waitState(pid, "T"); err != nil {
		return err
	}
	frozenCPU, err := cpuAcross(pid, idle)
	if err != nil {
		return err
	}

	tw := tabwriter.NewWriter(os.Stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "process backend, activator -> in-process queue-proxy -> app\t\t\t\t\n")
	fmt.Fprintf(tw, "figure\tp50\tp99\tmax\tn\t\n")
	row := func(name string, ds []time.Duration) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t\n", name, ms(pct(ds, 50)), ms(pct(ds, 99)), ms(pct(ds, 100)), len(ds))
	}
	row("warm TTFB (baseline)", warms)
	row("thaw TTFB", thawed)
	row("thaw TTFB - warm (goal < 2 ms)", extra)
	row("cold start TTFB (once)", []time.Duration{cold})
	fmt.Fprintf(tw, "\t\t\t\t\t\n")
	fmt.Fprintf(tw, "app CPU (utime+stime) across %v idle, work every %v\trunning\tfrozen\t\t\t\n", idle, tick)
	fmt.Fprintf(tw, "\t%s\t%s\t\t\t\n", ms(runningCPU), ms(frozenCPU))
	return tw.Flush()
}

// cpuAcross returns pid's CPU time used over d of wall time.
func cpuAcross(pid int, d time.Duration) (time.Duration, error) {
	before, err := cpuTime(pid)
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := cpuTime(pid)
	return after - before, err
}

// clockTicks is USER_HZ, 100 on every Linux the kernel ABI knows.
const clockTicks = 100

// cpuTime is utime+stime of pid from /proc/<pid>/stat.
func cpuTime(pid int) (time.Duration, error) {
	f, err := statFields(pid)
	if err != nil {
		return 0, err
	}
	// After "pid (comm)": state is field 0, utime 11, stime 12.
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+s) * time.Second / clockTicks, nil
}

// waitState polls pid's state until it is want, for at most 2 s.
func waitState(pid int, want string) error {
	var st string
	for range 2000 {
		if st = procState(pid); st == want {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("app %d in state %q, want %q", pid, st, want)
}

func procState(pid int) string {
	f, err := statFields(pid)
	if err != nil {
		return err.Error()
	}
	return f[0]
}

func statFields(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	i := strings.LastIndexByte(string(b), ')')
	f := strings.Fields(string(b)[i+1:])
	if i < 0 || len(f) < 13 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, b)
	}
	return f, nil
}

func median(ds []time.Duration) time.Duration { return pct(ds, 50) }

// pct is the nearest-rank percentile p of ds.
func pct(ds []time.Duration, p int) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	i := (p*len(s)+99)/100 - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d)/float64(time.Millisecond)) }
