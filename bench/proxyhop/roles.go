package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// Each role runs in its own process, so that CPU time and RSS are the
// role's alone and the load generator can be pinned to its own core.

var helloBody = []byte("Hello World!\n")

// runUpstream serves the trivial app: the 13-byte body, after delay.
// An empty addr means 127.0.0.1:$PORT, as an instance the Server starts.
func runUpstream(addr string, delay time.Duration) error {
	if addr == "" {
		addr = "127.0.0.1:" + os.Getenv("PORT")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if delay > 0 {
			time.Sleep(delay)
		}
		w.Header().Set("Content-Length", "13")
		_, _ = w.Write(helloBody)
	})
	announce(ln)
	return serveUntilSignal(ln, h)
}

// benchRevision is the one revision the chain serves.
const benchRevision = "bench-00001"

const benchSecret = "proxyhop-secret"

type fixedPicker string

func (p fixedPicker) PickRevision(*http.Request) (string, error) { return string(p), nil }

// runProxy serves one of the proxies under test in front of upstream
// (the server kinds start their own app, replying after delay).
func runProxy(kind, addr, upstream string, delay time.Duration) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var h http.Handler
	switch kind {
	case "server0", "server10":
		return runServer(ctx, ln, ccOf(kind), delay)
	case "rp":
		h = plainReverseProxy(upstream)
	case "qp0", "qp10":
		p, err := queueproxy.New(queueproxy.Options{Upstream: upstream, ContainerConcurrency: ccOf(kind)})
		if err != nil {
			return err
		}
		go func() { _ = p.Run(ctx) }()
		h = p
	case "chain0", "chain10":
		h, err = chain(ctx, upstream, ccOf(kind))
		if err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown proxy kind %q", kind)
	}
	announce(ln)
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func ccOf(kind string) int {
	if kind == "qp10" || kind == "chain10" || kind == "server10" {
		return 10
	}
	return 0
}

// plainReverseProxy is the baseline: httputil.ReverseProxy with an idle
// pool sized to the load (1000, as Knative's queue-proxy at CC 0).
func plainReverseProxy(upstream string) http.Handler {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1000, 1000
	rp := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: "http", Host: upstream})
	rp.Transport = t
	return rp
}

// chain is zeroscale's data plane as the Server runs it: the activator
// in front of an in-process queue-proxy on its own loopback listener,
// in front of the app.
func chain(ctx context.Context, upstream string, cc int) (http.Handler, error) {
	qp, err := queueproxy.New(queueproxy.Options{
		Upstream: upstream, Revision: benchRevision, Instance: "i1",
		ContainerConcurrency: cc, ActivatorSecret: benchSecret,
	})
	if err != nil {
		return nil, err
	}
	go func() { _ = qp.Run(ctx) }()
	qln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	qsrv := hop.NewServer("", qp)
	go func() { _ = qsrv.Serve(qln) }()
	go func() { <-ctx.Done(); _ = qsrv.Close() }()

	act, err := activator.New(activator.Options{Picker: fixedPicker(benchRevision), Secret: benchSecret})
	if err != nil {
		return nil, err
	}
	now := time.Now()
	rev, err := revision.New("bench", benchRevision, 1,
		revision.Spec{Command: []string{"app"}, ContainerConcurrency: cc}, now)
	if err != nil {
		return nil, err
	}
	if err := act.SetRevision(rev); err != nil {
		return nil, err
	}
	inst := backend.Instance{ID: "i1", Revision: benchRevision, Address: qln.Addr().String(), Ready: true, Started: now}
	if err := act.UpdateInstances(benchRevision, []backend.Instance{inst}); err != nil {
		return nil, err
	}
	go act.Run(ctx)
	return act, nil
}

// loadResult is what one load run reports to the orchestrator.
type loadResult struct {
	Requests int64         `json:"requests"`
	Errors   int64         `json:"errors"`
	Non2xx   int64         `json:"non2xx"`
	Elapsed  time.Duration `json:"elapsed"`
	P50      time.Duration `json:"p50"`
	P90      time.Duration `json:"p90"`
	P95      time.Duration `json:"p95"`
	P99      time.Duration `json:"p99"`
	Samples  int           `json:"samples"`
}

// maxSamplesPerWorker bounds the latency memory of one worker (8 MiB).
const maxSamplesPerWorker = 1 << 20

// runLoad drives url with conns keep-alive connections for d: closed
// loop when perSecond is 0, else open loop at perSecond requests a
// second shared by all connections. It prints a loadResult as JSON.
func runLoad(target, host string, conns int, d time.Duration, perSecond int) error {
	t := &http.Transport{
		MaxIdleConns: conns, MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns,
		DisableCompression: true, IdleConnTimeout: time.Minute,
	}
	client := &http.Client{Transport: t, Timeout: 10 * time.Second}
	var lim *rate.Limiter
	if perSecond > 0 {
		lim = rate.NewLimiter(rate.Limit(perSecond), 1)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()

	type worker struct {
		lat             []time.Duration
		n, errs, non2xx int64
	}
	workers := make([]worker, conns)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		w := &workers[i]
		wg.Go(func() {
			for ctx.Err() == nil {
				if lim != nil && lim.Wait(ctx) != nil {
					return
				}
				t0 := time.Now()
				req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
				if err != nil {
					w.errs++
					return
				}
				req.Host = host
				resp, err := client.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						w.errs++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
				if resp.StatusCode/100 != 2 {
					w.non2xx++
				}
				w.n++
				if len(w.lat) < maxSamplesPerWorker {
					w.lat = append(w.lat, time.Since(t0))
				}
			}
		})
	}
	wg.Wait()
	res := loadResult{Elapsed: time.Since(start)}
	var all []time.Duration
	for _, w := range workers {
		res.Requests += w.n
		res.Errors += w.errs
		res.Non2xx += w.non2xx
		all = append(all, w.lat...)
	}
	slices.Sort(all)
	res.Samples = len(all)
	res.P50, res.P90, res.P95, res.P99 = quantile(all, 0.50), quantile(all, 0.90), quantile(all, 0.95), quantile(all, 0.99)
	return json.NewEncoder(os.Stdout).Encode(res)
}

func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)-1))
	return sorted[i]
}

// announce tells the orchestrator where the role listens.
func announce(ln net.Listener) {
	fmt.Printf("LISTEN %s\n", ln.Addr())
}

func serveUntilSignal(ln net.Listener, h http.Handler) error {
	ctx, cancel := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer cancel()
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); _ = srv.Close() }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
