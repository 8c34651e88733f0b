package kubernetes_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/kubernetes"
	"github.com/zeroscale/zeroscale/revision"
)

// server is a zeroscale.Server on the Kubernetes backend, in a fresh
// namespace of the lab cluster, with the queue-proxy as a sidecar whose
// stats are scraped, and its events recorded.
type server struct {
	t      testing.TB
	srv    *zeroscale.Server
	ns     string
	addr   string
	client *http.Client

	mu     sync.Mutex
	events []zeroscale.Event
	notify chan struct{}
}

// zeroConfig starts revisions at zero and scales them to zero soon after
// their last request.
func zeroConfig() autoscaler.Config {
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	cfg.StableWindow = 6 * time.Second
	cfg.ScaleToZeroGracePeriod = time.Second
	return cfg
}

func newServer(t testing.TB, cfg autoscaler.Config, conns int) *server {
	t.Helper()
	return newServerWith(t, cfg, conns, false, nil)
}

// newServerWith is newServer with Options.NoEarlyReadiness set to
// noEarly and the backend passed through wrap.
func newServerWith(t testing.TB, cfg autoscaler.Config, conns int, noEarly bool, wrap func(backend.Backend) backend.Backend) *server {
	t.Helper()
	c := lab.Cluster(t)
	s := &server{t: t, ns: lab.Namespace(t), notify: make(chan struct{})}
	raw := make([]byte, 16)
	_, _ = rand.Read(raw)
	secret := hex.EncodeToString(raw)
	srv, err := zeroscale.New(zeroscale.Options{
		Config: cfg,
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			b, err := kubernetes.New(kubernetes.Options{
				Config: c.Config, Namespace: s.ns,
				QueueProxyImage:  queueImage,
				QueueProxyEnv:    []corev1.EnvVar{{Name: "ACTIVATOR_SECRET", Value: secret}},
				QuietPeriod:      2 * time.Second,
				NoEarlyReadiness: noEarly,
				Drain:            drain,
			})
			if err != nil || wrap == nil {
				return b, err
			}
			return wrap(b), nil
		},
		ScrapeStats:     true,
		ActivatorSecret: secret,
		WaitTimeout:     2 * time.Minute,
		OnEvent:         s.record,
	})
	require.NoError(t, err)
	s.srv = srv
	s.addr = serveOn(t, srv)
	s.client = &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns}}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		assert.NoError(t, srv.Shutdown(ctx))
		s.client.CloseIdleConnections()
	})
	return s
}

// serveOn serves srv on a new loopback listener and returns its address.
func serveOn(t testing.TB, srv *zeroscale.Server) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	return ln.Addr().String()
}

func (s *server) record(e zeroscale.Event) {
	s.mu.Lock()
	s.events = append(s.events, e)
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// waitEvent waits (bounded) for an event matching ok, past ones included.
func (s *server) waitEvent(timeout time.Duration, what string, ok func(zeroscale.Event) bool) {
	s.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		s.mu.Lock()
		evs, ch := s.events[seen:], s.notify
		seen = len(s.events)
		s.mu.Unlock()
		for _, e := range evs {
			if ok(e) {
				return
			}
		}
		select {
		case <-ch:
		case <-deadline:
			s.t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

func (s *server) apply(spec zeroscale.ServiceSpec) {
	s.t.Helper()
	_, err := s.srv.Apply(context.Background(), spec)
	require.NoError(s.t, err)
}

// result is one request's outcome.
type result struct {
	code int
	body string
	ttfb time.Duration
	err  error
}

func (r result) ok() bool { return r.err == nil && r.code == http.StatusOK }

func (r result) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %q", r.code, r.body)
}

// get sends GET path to service's host and reads the whole answer.
func (s *server) get(ctx context.Context, service, path string) result {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+s.addr+path, nil)
	if err != nil {
		return result{err: err}
	}
	req.Host = service + ".default.localhost"
	var first time.Time
	start := time.Now()
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{GotFirstResponseByte: func() { first = time.Now() }}))
	resp, err := s.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{code: resp.StatusCode, body: string(body), ttfb: first.Sub(start), err: err}
}

func e2eSpec(env ...revision.EnvVar) revision.Spec {
	return revision.Spec{Image: e2eImage, Env: env}
}

// TestServerFromZero: a service at zero is served by a pod created for
// its first request.
func TestServerFromZero(t *testing.T) {
	s := newServer(t, zeroConfig(), 4)
	s.apply(zeroscale.ServiceSpec{Name: "hello", Template: e2eSpec()})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r := s.get(ctx, "hello", "/")
	require.True(t, r.ok(), "%v", r)
	assert.Equal(t, "hello-00001\n", r.body)
	assert.Len(t, lab.Cluster(t).Runtime.Pods(s.ns), 1, "one pod")
	t.Logf("E2E k8s from zero: first byte after %s", r.ttfb.Round(time.Millisecond))
}

// TestServerSiege: from zero, 500 clients against containerConcurrency
// 100 and max-scale 3: exactly 3 pods, every request 200.
func TestServerSiege(t *testing.T) {
	const clients, dur, maxScale = 500, 8 * time.Second, 3
	s := newServer(t, zeroConfig(), clients)
	spec := e2eSpec()
	spec.ContainerConcurrency = 100
	spec.Scaling.MaxScale = new(maxScale)
	s.apply(zeroscale.ServiceSpec{Name: "siege", Template: spec})

	var total, failed atomic.Int64
	var firstErr sync.Once
	ctx, cancel := context.WithTimeout(t.Context(), dur+2*time.Minute)
	defer cancel()
	start := time.Now()
	stop := start.Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				r := s.get(ctx, "siege", "/")
				total.Add(1)
				if !r.ok() {
					failed.Add(1)
					firstErr.Do(func() { t.Errorf("first failure: %v", r) })
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	maxReady := 0
	s.mu.Lock()
	for _, e := range s.events {
		if e.Kind == zeroscale.EventScaled && e.Revision == "siege-00001" {
			maxReady = max(maxReady, e.To)
		}
	}
	s.mu.Unlock()
	pods := lab.Cluster(t).Runtime.Pods(s.ns)
	t.Logf("E2E k8s siege clients=%d duration=%s requests=%d (%.0f req/s) errors=%d max-ready=%d pods=%d",
		clients, elapsed.Round(time.Millisecond), total.Load(), float64(total.Load())/elapsed.Seconds(), failed.Load(), maxReady, len(pods))
	assert.Zero(t, failed.Load(), "failed requests of %d", total.Load())
	assert.Equal(t, maxScale, maxReady, "ready instances at most")
	assert.Len(t, pods, maxScale, "pods created")
}

// TestServerScaleDownUnderLoad deletes a service while 5 s requests are
// in flight on each of its 3 pods: every request completes.
func TestServerScaleDownUnderLoad(t *testing.T) {
	const n, rev = 3, "drain-00001"
	s := newServer(t, zeroConfig(), n)
	spec := e2eSpec()
	spec.ContainerConcurrency = 1
	spec.Scaling.MaxScale = new(n)
	s.apply(zeroscale.ServiceSpec{Name: "drain", Template: spec})

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = s.get(ctx, "drain", "/sleep?d=5s") })
	}
	s.waitEvent(time.Minute, "3 ready pods", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.To == n
	})
	require.Eventually(t, func() bool {
		st, err := s.srv.ServiceStatus("drain")
		return err == nil && len(st.Revisions) == 1 && st.Revisions[0].InFlight == n && st.Revisions[0].Held == 0
	}, time.Minute, 10*time.Millisecond, "3 requests in flight")
	start := time.Now()
	require.NoError(t, s.srv.Delete(ctx, "drain"))
	took := time.Since(start)
	wg.Wait()
	for i, r := range results {
		assert.True(t, r.ok() && strings.HasSuffix(r.body, "slept 5s\n"), "request %d: %v", i, r)
	}
	t.Logf("E2E k8s scale-down: %d pods with 5 s requests in flight deleted; Delete took %s; all requests completed", n, took.Round(time.Millisecond))
}

// TestServerRollout changes the template under steady load: no request
// fails and the traffic ends on the new revision.
func TestServerRollout(t *testing.T) {
	cfg := zeroConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = false, 1
	s := newServer(t, cfg, 16)
	spec := func(v string) zeroscale.ServiceSpec {
		return zeroscale.ServiceSpec{Name: "roll", Template: e2eSpec(revision.EnvVar{Name: "VERSION", Value: v})}
	}
	s.apply(spec("v1"))
	s.waitEvent(time.Minute, "roll-00001 ready", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventRevisionReady && e.Revision == "roll-00001"
	})
	const clients = 16
	var total, failed, onNew atomic.Int64
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				r := s.get(ctx, "roll", "/")
				total.Add(1)
				switch {
				case !r.ok():
					if failed.Add(1) == 1 {
						t.Errorf("first failure: %v", r)
					}
				case r.body == "roll-00002\n":
					onNew.Add(1)
				}
			}
		})
	}
	require.Eventually(t, func() bool { return total.Load() >= 200 }, time.Minute, 10*time.Millisecond)
	s.apply(spec("v2"))
	s.waitEvent(time.Minute, "traffic on roll-00002", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventTrafficChanged && e.Service == "roll" && e.Message == "roll-00002 100 %"
	})
	after := onNew.Load()
	require.Eventually(t, func() bool { return onNew.Load() >= after+200 }, time.Minute, 10*time.Millisecond)
	close(done)
	wg.Wait()
	t.Logf("E2E k8s rollout requests=%d errors=%d on roll-00002=%d", total.Load(), failed.Load(), onNew.Load())
	assert.Zero(t, failed.Load())
}

// TestServerAutoscaledScaleDownUnderLoad: the autoscaler takes a
// revision from 3 pods to 1 while clients keep 5 s requests in flight on
// every pod; the ReplicaSet controller picks the victims, their
// sidecars drain, and no request fails.
func TestServerAutoscaledScaleDownUnderLoad(t *testing.T) {
	const rev = "shrink-00001"
	s := newServer(t, zeroConfig(), 64)
	spec := e2eSpec()
	target, maxScale := 10.0, 3 // 7 requests in flight per pod
	spec.Scaling.Target, spec.Scaling.MaxScale = &target, &maxScale
	s.apply(zeroscale.ServiceSpec{Name: "shrink", Template: spec})

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	var failed, completed atomic.Int64
	check := func(r result, suffix string) bool {
		if !r.ok() || !strings.HasSuffix(r.body, suffix) {
			if failed.Add(1) == 1 {
				t.Errorf("first failure: %v", r)
			}
			return false
		}
		return true
	}
	loop := func(wg *sync.WaitGroup, stop <-chan struct{}, f func()) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				f()
			}
		})
	}
	burst, long := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for range 40 {
		loop(&wg, burst, func() { check(s.get(ctx, "shrink", "/sleep?d=200ms"), "slept 200ms\n") })
	}
	s.waitEvent(2*time.Minute, "3 ready pods", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.To == 3
	})
	for range 6 {
		loop(&wg, long, func() {
			if check(s.get(ctx, "shrink", "/sleep?d=5s"), "slept 5s\n") {
				completed.Add(1)
			}
		})
	}
	close(burst)
	s.waitEvent(2*time.Minute, "scale down to 1", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.From > 1 && e.To == 1
	})
	at := completed.Load()
	require.Eventually(t, func() bool { return completed.Load() >= at+6 || failed.Load() > 0 }, time.Minute, 10*time.Millisecond)
	close(long)
	wg.Wait()
	t.Logf("E2E k8s autoscaled scale-down: 3 → 1 pods with 6 clients of 5 s requests; %d long requests completed (%d before), %d failed; pods created %d",
		completed.Load(), at, failed.Load(), len(lab.Cluster(t).Runtime.Pods(s.ns)))
	assert.Zero(t, failed.Load())
}

// TestServerReservedInstance: with idle-mode reserve a service at zero
// runs its reserved pod, which serves the first request at once; the
// standard pod that request asked for takes over and the reserved one
// retires; idle again, a reserved pod comes back.
func TestServerReservedInstance(t *testing.T) {
	s := newServer(t, zeroConfig(), 4)
	spec := e2eSpec()
	spec.Scaling.IdleMode = revision.IdleModeReserve
	spec.Scaling.ReservedCPUMillis = new(int64(100))
	s.apply(zeroscale.ServiceSpec{Name: "rsv", Template: spec})
	is := func(kind zeroscale.EventKind, n int) func(zeroscale.Event) bool {
		seen := 0
		return func(e zeroscale.Event) bool {
			if e.Kind == kind && e.Revision == "rsv-00001" {
				seen++
			}
			return seen == n
		}
	}
	s.waitEvent(2*time.Minute, "the reserved pod serving", is(zeroscale.EventReservedStarted, 1))
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	r := s.get(ctx, "rsv", "/")
	require.True(t, r.ok(), "%v", r)
	assert.Equal(t, "rsv-00001\n", r.body)
	s.waitEvent(2*time.Minute, "the reserved pod retired", is(zeroscale.EventReservedRetired, 1))
	warm := s.get(ctx, "rsv", "/")
	require.True(t, warm.ok(), "%v", warm)
	s.waitEvent(2*time.Minute, "a reserved pod back", is(zeroscale.EventReservedStarted, 2))
	t.Logf("E2E k8s reserved: first byte on the reserved pod %s, then on a standard pod %s",
		r.ttfb.Round(time.Millisecond), warm.ttfb.Round(time.Millisecond))
}
