package e2e_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// TestColdStart measures cold starts, interleaved, 20 of each kind: the
// ideal launcher (idealLaunch: exec the app, send the request the moment
// it listens), and a service at zero woken by one request, without and
// with socket activation (Spec.SocketActivation). The overhead is the
// first-byte time minus the app's own time-to-listen measured by the
// ideal launcher just before: what zeroscale adds (decision, spawn,
// readiness, proxying); the ideal launcher's own overhead is one request
// on a fresh connection.
func TestColdStart(t *testing.T) {
	const n = 20
	h := newHarness(t, zeroConfig(), 4)
	var listen, ideal, plain, socket, ttfb, ttfbSocket []time.Duration
	for i := range n {
		base, first := idealLaunch(t)
		listen, ideal = append(listen, base), append(ideal, first-base)
		for _, activated := range []bool{false, true} {
			name := fmt.Sprintf("cold-%02d", i)
			if activated {
				name = fmt.Sprintf("cold-sa-%02d", i)
			}
			spec := appSpec(t)
			spec.SocketActivation = activated
			h.apply(zeroscale.ServiceSpec{Name: name, Template: spec})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			r := h.get(ctx, name, "/")
			if !r.ok() || r.body != name+"-00001\n" {
				cancel()
				t.Fatalf("cold start %s: %v", name, r)
			}
			if activated {
				socket, ttfbSocket = append(socket, r.ttfb-base), append(ttfbSocket, r.ttfb)
			} else {
				plain, ttfb = append(plain, r.ttfb-base), append(ttfb, r.ttfb)
			}
			require.NoError(t, h.srv.Delete(ctx, name))
			cancel()
		}
	}
	p := func(ds []time.Duration) string {
		return fmt.Sprintf("p50=%s p95=%s", ms(percentile(ds, 50)), ms(percentile(ds, 95)))
	}
	t.Logf("E2E coldstart n=%d overhead (first byte - app time-to-listen): ideal launcher %s | zeroscale %s | zeroscale socket-activated %s",
		n, p(ideal), p(plain), p(socket))
	t.Logf("E2E coldstart first byte: zeroscale %s | socket-activated %s | app time-to-listen (exec to listening) %s",
		p(ttfb), p(ttfbSocket), p(listen))
}

// TestSiege: from zero, 500 clients for 20 s (5 s with -short) against
// containerConcurrency 100 and max-scale 3: exactly 3 instances, every
// request 200, then back to zero after the shortened idle period.
func TestSiege(t *testing.T) {
	const clients = 500
	dur := 20 * time.Second
	if testing.Short() {
		dur = 5 * time.Second
	}
	h := newHarness(t, zeroConfig(), clients)
	spec := appSpec(t)
	spec.ContainerConcurrency = 100
	maxScale := 3
	spec.Scaling.MaxScale = &maxScale
	h.apply(zeroscale.ServiceSpec{Name: "siege", Template: spec})

	siege(t, h, "siege", "/", clients, dur, maxScale, "E2E siege")
}

// siege sends GET path to service from clients goroutines for dur, and checks
// every request got 200, exactly maxScale instances served, and the
// revision went back to zero afterwards; label starts its log lines.
func siege(t *testing.T, h *harness, service, path string, clients int, dur time.Duration, maxScale int, label string) {
	t.Helper()
	rev := service + "-00001"
	var total, failed atomic.Int64
	var firstErr sync.Once
	ctx, cancel := context.WithTimeout(context.Background(), dur+time.Minute)
	defer cancel()
	start := time.Now()
	stop := start.Add(dur)
	var wg sync.WaitGroup
	for range clients {
		wg.Go(func() {
			for time.Now().Before(stop) {
				r := h.get(ctx, service, path)
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
	h.mu.Lock()
	for _, e := range h.events {
		if e.Kind == zeroscale.EventScaled && e.Revision == rev {
			maxReady = max(maxReady, e.To)
		}
	}
	h.mu.Unlock()
	t.Logf(label+" clients=%d duration=%s requests=%d (%.0f req/s) errors=%d max-instances=%d",
		clients, elapsed.Round(time.Millisecond), total.Load(), float64(total.Load())/elapsed.Seconds(), failed.Load(), maxReady)
	assert.Zero(t, failed.Load(), "requests failed of %d", total.Load())
	assert.Equal(t, maxScale, maxReady, "the most instances ready at once")
	idle := time.Now()
	h.waitEvent(time.Minute, "scale to zero", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.To == 0
	})
	t.Logf(label+" back to zero %s after the last request", time.Since(idle).Round(100*time.Millisecond))
}

// TestRolloutUnderLoad changes the template under steady load: no
// request fails and the traffic ends on the new revision.
func TestRolloutUnderLoad(t *testing.T) {
	cfg := zeroConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = false, 1 // a new revision proves itself before it gets traffic
	h := newHarness(t, cfg, 16)
	spec := func(v string) zeroscale.ServiceSpec {
		return zeroscale.ServiceSpec{Name: "roll", Template: appSpec(t, revision.EnvVar{Name: "VERSION", Value: v})}
	}
	h.apply(spec("v1"))
	h.waitEvent(30*time.Second, "roll-00001 ready", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventRevisionReady && e.Revision == "roll-00001"
	})

	const clients = 16
	var total, failed, onNew atomic.Int64
	var switched atomic.Bool
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan struct{})
	sawNew := make([]atomic.Bool, clients) // answered by roll-00002 after the switch
	var flippedBack atomic.Int64           // roll-00001 answers after that
	var wg sync.WaitGroup
	for i := range clients {
		untilClosed(&wg, done, func() {
			r := h.get(ctx, "roll", "/")
			total.Add(1)
			if !r.ok() {
				if failed.Add(1) == 1 {
					t.Errorf("first failure: %v", r)
				}
				return
			}
			if !switched.Load() {
				return
			}
			switch {
			case r.body == "roll-00002\n":
				sawNew[i].Store(true)
				onNew.Add(1)
			case sawNew[i].Load():
				flippedBack.Add(1)
			}
		})
	}
	for total.Load() < 200 && ctx.Err() == nil {
		waitABit(ctx)
	}
	h.apply(spec("v2"))
	h.waitEvent(time.Minute, "traffic on roll-00002", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventTrafficChanged && e.Service == "roll" && e.Message == "roll-00002 100 %"
	})
	switched.Store(true)
	allNew := func() bool {
		for i := range sawNew {
			if !sawNew[i].Load() {
				return false
			}
		}
		return true
	}
	for (onNew.Load() < 200 || !allNew()) && ctx.Err() == nil {
		waitABit(ctx)
	}
	close(done)
	wg.Wait()
	t.Logf("E2E rollout requests=%d errors=%d", total.Load(), failed.Load())
	assert.True(t, allNew(), "every client reached roll-00002")
	assert.Zero(t, flippedBack.Load(), "requests that went back to roll-00001 after reaching roll-00002")
	st, err := h.srv.ServiceStatus("roll")
	require.NoError(t, err)
	if assert.Len(t, st.Traffic, 1) {
		assert.Equal(t, "roll-00002", st.Traffic[0].Revision)
		assert.Equal(t, 100, st.Traffic[0].Percent)
	}
}

// untilClosed runs f again and again on a goroutine of wg (a client's
// request loop) until stop is closed.
func untilClosed(wg *sync.WaitGroup, stop <-chan struct{}, f func()) {
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

// waitABit yields between polls of a load counter that real requests
// advance; it is bounded by ctx.
func waitABit(ctx context.Context) {
	select {
	case <-ctx.Done():
	case <-time.After(10 * time.Millisecond):
	}
}

// TestScaleDownUnderLoad removes instances while 5 s requests are in
// flight on each of them: every request completes.
func TestScaleDownUnderLoad(t *testing.T) {
	const n, rev = 3, "drain-00001"
	h := newHarness(t, zeroConfig(), n)
	spec := appSpec(t)
	spec.ContainerConcurrency = 1
	maxScale := n
	spec.Scaling.MaxScale = &maxScale
	h.apply(zeroscale.ServiceSpec{Name: "drain", Template: spec})

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results := make([]result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = h.get(ctx, "drain", "/sleep?d=5s") })
	}
	// With container concurrency 1, each request runs on its own
	// instance once all n are in flight.
	h.waitEvent(30*time.Second, "3 instances", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.To == n
	})
	h.waitRevision(10*time.Second, "drain", "3 requests in flight", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && r.InFlight == n && r.Held == 0
	})
	start := time.Now()
	require.NoError(t, h.srv.Delete(ctx, "drain"))
	took := time.Since(start)
	wg.Wait()
	for i, r := range results {
		if assert.True(t, r.ok(), "request %d: %v", i, r) {
			assert.True(t, strings.HasSuffix(r.body, "slept 5s\n"), "request %d: %v", i, r)
		}
	}
	t.Logf("E2E scale-down: %d instances with 5 s requests in flight removed; Delete drained for %s; all requests completed", n, took.Round(time.Millisecond))
}

// TestParallelServices wakes 100 services from zero at once.
func TestParallelServices(t *testing.T) {
	const n = 100
	h := newHarness(t, zeroConfig(), n)
	for i := range n {
		h.apply(zeroscale.ServiceSpec{Name: fmt.Sprintf("par-%03d", i), Template: appSpec(t)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	results := make([]result, n)
	start := time.Now()
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i] = h.get(ctx, fmt.Sprintf("par-%03d", i), "/") })
	}
	wg.Wait()
	all := time.Since(start)
	var ttfb []time.Duration
	for i, r := range results {
		if want := fmt.Sprintf("par-%03d-00001\n", i); !r.ok() || r.body != want {
			t.Errorf("service %d: %v", i, r)
			continue
		}
		ttfb = append(ttfb, r.ttfb)
	}
	t.Logf("E2E parallel services=%d served=%d first byte p50=%s p95=%s max=%s (all in %s)",
		n, len(ttfb), ms(percentile(ttfb, 50)), ms(percentile(ttfb, 95)), ms(percentile(ttfb, 100)), all.Round(time.Millisecond))
}

// TestCrashLoopStatus: an app that exits at once shows as a crash loop
// in the status, with its exit code and last output.
func TestCrashLoopStatus(t *testing.T) {
	cfg := zeroConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = false, 1
	h := newHarness(t, cfg, 1)
	h.apply(zeroscale.ServiceSpec{Name: "crash", Template: appSpecWith(t, testapp.Options{Mode: testapp.Crash})})
	var msg string
	h.waitRevision(30*time.Second, "crash", "CrashLoop condition", func(r zeroscale.RevisionStatus) bool {
		c, ok := r.Condition(zeroscale.ConditionContainerHealthy)
		msg = c.Message
		return ok && c.Reason == zeroscale.ReasonCrashLoop && strings.Contains(c.Message, "exit code 3")
	})
	assert.Contains(t, msg, "fatal: boom", "the crash loop message has the app's last output")
	st, err := h.srv.ServiceStatus("crash")
	require.NoError(t, err)
	c, _ := st.Revisions[0].Condition(zeroscale.ConditionReady)
	assert.NotEqual(t, zeroscale.ConditionTrue, c.Status, "a crash-looping revision is not Ready: %+v", c)
	t.Logf("E2E crash loop: %s", msg)
}

// TestCrashLoopFailsHeldRequestsFast: a request that wakes a revision
// whose app exits at start is answered 503 as soon as the engine reports
// the crash loop, with a body that says so, not after the hold deadline
// with a generic "no instance became ready" (here 2 minutes, the
// harness's WaitTimeout).
func TestCrashLoopFailsHeldRequestsFast(t *testing.T) {
	h := newHarness(t, zeroConfig(), 1)
	h.apply(zeroscale.ServiceSpec{Name: "crashy", Template: appSpecWith(t, testapp.Options{Mode: testapp.Crash})})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	start := time.Now()
	r := h.get(ctx, "crashy", "/")
	took := time.Since(start)
	require.NoError(t, r.err, "after %v", took)
	require.Equal(t, http.StatusServiceUnavailable, r.code, "after %v: %v", took, r)
	for _, want := range []string{"crash loop", "exit code 3", "fatal: boom"} {
		assert.Contains(t, r.body, want)
	}
	assert.NotEmpty(t, r.hdr.Get("Retry-After"), "Retry-After on the crash-loop 503")
	// A request while it still crash-loops fails at once, too.
	r2 := h.get(ctx, "crashy", "/")
	assert.Equal(t, http.StatusServiceUnavailable, r2.code, "second request: %v", r2)
	assert.Contains(t, r2.body, "crash loop", "second request")
	t.Logf("E2E crash loop fail-fast: first request answered after %v: %s", took.Round(time.Millisecond), strings.TrimSpace(r.body))
}

// TestNeverListeningAppIsNotHealthy: an app that never listens is not
// ContainerHealthy while it starts (Unknown, Starting, with how long),
// rather than True until its start timeout kills it.
func TestNeverListeningAppIsNotHealthy(t *testing.T) {
	cfg := zeroConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = false, 1
	h := newHarness(t, cfg, 1)
	h.apply(zeroscale.ServiceSpec{Name: "mute", Template: revision.Spec{Command: []string{"sleep", "600"}}})
	var c zeroscale.Condition
	h.waitRevision(30*time.Second, "mute", "ContainerHealthy Unknown/Starting", func(r zeroscale.RevisionStatus) bool {
		var ok bool
		c, ok = r.Condition(zeroscale.ConditionContainerHealthy)
		return ok && c.Status == zeroscale.ConditionUnknown && c.Reason == zeroscale.ReasonStarting
	})
	assert.Contains(t, c.Message, "has not passed its readiness probe yet")
}

// TestAutoscaledScaleDownUnderLoad: a burst scales a revision to 3
// instances, then only 5 s requests remain, too few for 3 instances:
// the autoscaler removes two while those requests are in flight on them
// (power-of-two-choices spreads them), and none is cut.
func TestAutoscaledScaleDownUnderLoad(t *testing.T) {
	const rev = "shrink-00001"
	h := newHarness(t, zeroConfig(), 64)
	spec := appSpec(t)
	target, maxScale := 10.0, 3 // 7 requests in flight per instance
	spec.Scaling.Target, spec.Scaling.MaxScale = &target, &maxScale
	h.apply(zeroscale.ServiceSpec{Name: "shrink", Template: spec})

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var failed atomic.Int64
	check := func(r result, suffix string) {
		if !r.ok() || !strings.HasSuffix(r.body, suffix) {
			if failed.Add(1) == 1 {
				t.Errorf("first failure: %v", r)
			}
		}
	}
	// The burst: 40 clients of 200 ms requests until 3 instances are up.
	burst := make(chan struct{})
	var wg sync.WaitGroup
	for range 40 {
		untilClosed(&wg, burst, func() { check(h.get(ctx, "shrink", "/sleep?d=200ms"), "slept 200ms\n") })
	}
	h.waitEvent(time.Minute, "3 instances", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.To == 3
	})
	// Then 6 clients of back-to-back 5 s requests until the revision is
	// down to one instance and 5 s more.
	long := make(chan struct{})
	var completed atomic.Int64
	for range 6 {
		untilClosed(&wg, long, func() {
			check(h.get(ctx, "shrink", "/sleep?d=5s"), "slept 5s\n")
			completed.Add(1)
		})
	}
	close(burst)
	h.waitEvent(time.Minute, "scale down to 1", func(e zeroscale.Event) bool {
		return e.Kind == zeroscale.EventScaled && e.Revision == rev && e.From > 1 && e.To == 1
	})
	// Every request in flight at the scale-down (one per client) must
	// complete, those on the removed instances included.
	atScaleDown := completed.Load()
	for completed.Load() < atScaleDown+6 && ctx.Err() == nil {
		waitABit(ctx)
	}
	close(long)
	wg.Wait()
	t.Logf("E2E autoscaled scale-down: 3 → 1 with 6 clients of 5 s requests; %d long requests completed (%d before the scale-down), %d failed",
		completed.Load(), atScaleDown, failed.Load())
}

// TestH2C: an HTTP/2 (prior knowledge, as gRPC) request from zero to a
// revision that declares h2c reaches the app as HTTP/2, through the
// activator and the queue-proxy.
func TestH2C(t *testing.T) {
	h := newHarness(t, zeroConfig(), 1)
	spec := appSpec(t)
	spec.Protocol = revision.ProtocolH2C
	h.apply(zeroscale.ServiceSpec{Name: "grpcish", Template: spec})
	proto, got := h2Get(t, h.addr, "grpcish.default.localhost")
	assert.Equal(t, "HTTP/2.0", proto, "the client's protocol")
	assert.Equal(t, "200 HTTP/2.0\n", got, "the app sees HTTP/2.0")
}

// TestHTTP2ClientOfHTTP1App: an HTTP/2 client (curl --http2-prior-knowledge)
// of an app that speaks only HTTP/1.1 is served, over HTTP/1.1 upstream:
// the revision declares the app's protocol, not the client. Before, the
// next hop kept the client's protocol and the client got 502.
func TestHTTP2ClientOfHTTP1App(t *testing.T) {
	h := newHarness(t, zeroConfig(), 1)
	h.apply(zeroscale.ServiceSpec{Name: "plain", Template: appSpecWith(t, testapp.Options{HTTP1Only: true})})
	proto, got := h2Get(t, h.addr, "plain.default.localhost")
	assert.Equal(t, "HTTP/2.0", proto, "the client's protocol")
	assert.Equal(t, "200 HTTP/1.1\n", got, "the app sees HTTP/1.1")
}

// h2Get sends GET /proto to host over h2c with prior knowledge and
// returns the response's protocol and "<code> <body>".
func h2Get(t *testing.T, addr, host string) (proto, got string) {
	t.Helper()
	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	req, err := http.NewRequest("GET", "http://"+addr+"/proto", nil)
	require.NoError(t, err)
	req.Host = host
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	resp, err := (&http.Client{Transport: tr}).Do(req.WithContext(ctx))
	require.NoError(t, err)
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.Proto, fmt.Sprintf("%d %s", resp.StatusCode, body)
}

// TestWebSocket: a WebSocket from zero is upgraded through the activator
// and the queue-proxy and echoes both ways.
func TestWebSocket(t *testing.T) {
	h := newHarness(t, zeroConfig(), 1)
	h.apply(zeroscale.ServiceSpec{Name: "ws", Template: appSpec(t)})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws://"+h.addr+"/ws", &websocket.DialOptions{Host: "ws.default.localhost"})
	require.NoError(t, err)
	defer c.CloseNow()
	for _, msg := range []string{"one", "two"} {
		require.NoError(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		_, got, err := c.Read(ctx)
		require.NoError(t, err)
		assert.Equal(t, "ws-00001: "+msg, string(got))
	}
	c.Close(websocket.StatusNormalClosure, "")
}
