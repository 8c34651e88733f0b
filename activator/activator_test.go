package activator

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/revision"
)

func TestHeldAtZeroThenServed(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(false)}))

	res := e.get(t)
	e.waitHeld(t, 1)
	// The first request to an idle revision is reported at once.
	assert.Equal(t, 1.0, e.nextReport(t).AverageConcurrency)

	e.clk.Step(2500 * time.Millisecond)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	r := wait(t, res)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "ok a ", r.body)
	assert.Equal(t, "2.5s", r.header.Get(ColdStartHeader))
	assert.Equal(t, 1.0, e.counter("coldStarts", rev))

	// A warm request is not held and carries no cold-start header.
	r = wait(t, e.get(t))
	assert.Equal(t, http.StatusOK, r.code)
	assert.Empty(t, r.header.Get(ColdStartHeader))
	require.Eventually(t, func() bool { return e.counter("requests", rev, "200") == 2 }, 10*time.Second, time.Millisecond)
}

// The scale-from-zero stampede: 1,000 requests at zero, CC 10, three
// instances becoming ready one by one. Every request is served and no
// instance ever has more than 10 in flight.
func TestThousandHeldRequestsReleasedByConcurrency(t *testing.T) {
	const n, cc = 1000, 10
	e := newEnv(t, cc, nil)
	ups := []*upstream{newUpstream(t, "a", true), newUpstream(t, "b", true), newUpstream(t, "c", true)}
	snapshot := func(ready int) []backend.Instance {
		var insts []backend.Instance
		for i, u := range ups {
			insts = append(insts, u.instance(i < ready))
		}
		return insts
	}
	require.NoError(t, e.h.UpdateInstances(rev, snapshot(0)))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	t.Cleanup(client.CloseIdleConnections)
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			res, err := client.Get(e.srv.URL)
			if err != nil {
				codes <- 0
				return
			}
			res.Body.Close()
			codes <- res.StatusCode
		})
	}
	e.waitHeld(t, n)
	for ready := 1; ready <= len(ups); ready++ {
		require.NoError(t, e.h.UpdateInstances(rev, snapshot(ready)))
		u := ups[ready-1]
		require.Eventually(t, func() bool { return u.inFlight.Load() == cc }, 10*time.Second, time.Millisecond)
		assert.Equal(t, n-ready*cc, e.load(t).Held)
		assert.Equal(t, 0, e.load(t).FreeSlots)
	}
	for _, u := range ups {
		u.release()
	}
	wg.Wait()
	close(codes)
	for c := range codes {
		require.Equal(t, http.StatusOK, c)
	}
	var served int64
	for _, u := range ups {
		assert.LessOrEqual(t, u.max.Load(), int64(cc), "instance %s", u.id)
		served += u.served.Load()
	}
	assert.Equal(t, int64(n), served)
	want := Load{Serving: 3, FreeSlots: 3 * cc, WaitTimeout: MinWait}
	require.Eventually(t, func() bool { return e.load(t) == want }, 10*time.Second, time.Millisecond)
}

func TestQueueFullIsImmediate503(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.MaxHeldRequests = 1 })
	first := e.get(t)
	e.waitHeld(t, 1)

	r := wait(t, e.get(t))
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Contains(t, r.body, "hold queue full")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, 1.0, e.counter("rejected", rev, "queue_full"))

	// Nothing held is dropped silently: removing the revision answers it.
	e.h.RemoveRevision(rev)
	r = wait(t, first)
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Contains(t, r.body, "revision removed")
	// New requests for it are 404.
	r = wait(t, e.get(t))
	assert.Equal(t, http.StatusNotFound, r.code)
}

func TestHeldBytesBound(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.MaxHeldBytes = 1000 })
	// Alone, a request larger than the bound is still held.
	big := strings.Repeat("x", 2000)
	first := e.do(t.Context(), http.MethodPut, "/", strings.NewReader(big), nil)
	e.waitHeld(t, 1)
	r := wait(t, e.do(t.Context(), http.MethodPut, "/", strings.NewReader("y"), nil))
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Contains(t, r.body, "bytes held")

	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	r = wait(t, first)
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "ok a "+big, r.body)
}

func TestWaitDeadline(t *testing.T) {
	e := newEnv(t, 1, nil)
	res := e.get(t)
	e.waitHeld(t, 1)
	assert.Equal(t, MinWait, e.load(t).WaitTimeout)

	e.clk.Step(MinWait - time.Nanosecond)
	assert.Equal(t, 1, e.load(t).Held) // the timer has not fired
	e.clk.Step(time.Nanosecond)
	r := wait(t, res)
	assert.Equal(t, http.StatusServiceUnavailable, r.code)
	assert.Contains(t, r.body, "wait deadline passed: no instance became ready within 10s")
	assert.Equal(t, "1", r.header.Get("Retry-After"))
	assert.Equal(t, 0, e.load(t).Held)
	assert.Equal(t, 1.0, e.counter("rejected", rev, "wait_timeout"))
}

func TestWaitTimeoutRule(t *testing.T) {
	e := newEnv(t, 1, nil)
	u := newUpstream(t, "a", false)
	inst := u.instance(false)
	inst.Started = e.clk.Now()
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))
	e.clk.Step(8 * time.Second)
	inst.Ready = true
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))
	// 3.5 × the observed 8 s start-up.
	assert.Equal(t, 28*time.Second, e.load(t).WaitTimeout)
	assert.Equal(t, 8*time.Second, e.h.lookup(rev).retryAfter())

	// Capped by the revision's request timeout.
	require.NoError(t, e.h.SetRevision(newRevision(t, rev, 1, 5*time.Second)))
	assert.Equal(t, 5*time.Second, e.load(t).WaitTimeout)

	// An instance already ready in the first snapshot is no sample.
	e2 := newEnv(t, 1, nil)
	old := u.instance(true)
	old.Started = e2.clk.Now().Add(-time.Hour)
	require.NoError(t, e2.h.UpdateInstances(rev, []backend.Instance{old}))
	assert.Equal(t, MinWait, e2.load(t).WaitTimeout)

	// A start-up sample is capped at the longest request timeout, so an
	// instance started long ago neither overflows the average nor asks
	// rejected clients to come back in years.
	e4 := newEnv(t, 1, nil)
	ancient := u.instance(false)
	ancient.Started = time.Unix(0, 0)
	require.NoError(t, e4.h.UpdateInstances(rev, []backend.Instance{ancient}))
	ancient.Ready = true
	require.NoError(t, e4.h.UpdateInstances(rev, []backend.Instance{ancient}))
	assert.Equal(t, revision.MaxRequestTimeout, e4.h.lookup(rev).retryAfter())
	assert.Equal(t, revision.DefaultRequestTimeout, e4.load(t).WaitTimeout)

	// A configured wait replaces the rule, still capped.
	e3 := newEnv(t, 1, func(o *Options) { o.WaitTimeout = 2 * time.Minute })
	assert.Equal(t, 2*time.Minute, e3.load(t).WaitTimeout)
}

// TestRestartKeepsStartupTime is the regression test of a 200 ms
// restart of a 2-hour-old instance: it must leave the hold deadline at
// 10 s and Retry-After at 1 s, not move them to minutes and an hour.
// Once for an engine that follows the restart rule (a new instance with
// a new ID), once for one that does not (the same ID goes not ready and
// ready again, as a failing readiness probe also looks).
func TestRestartKeepsStartupTime(t *testing.T) {
	for _, newID := range []bool{true, false} {
		e := newEnv(t, 1, nil)
		u := newUpstream(t, "a", false)
		old := u.instance(false)
		old.Started = e.clk.Now()
		require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{old}))
		e.clk.Step(time.Second)
		old.Ready = true
		require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{old}))
		require.Equal(t, MinWait, e.load(t).WaitTimeout, "a 1 s start")
		e.clk.Step(2 * time.Hour)

		// The app crashes and is back 200 ms later.
		restarted := old
		restarted.Ready = false
		if newID {
			restarted.ID, restarted.Started = old.ID+"-r1", e.clk.Now()
		}
		require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{restarted}))
		e.clk.Step(200 * time.Millisecond)
		restarted.Ready = true
		require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{restarted}))

		require.Equal(t, MinWait, e.load(t).WaitTimeout, "new ID %v: the hold deadline", newID)
		require.Equal(t, time.Second, e.h.lookup(rev).retryAfter(), "new ID %v: Retry-After", newID)
	}
}

func TestClientCancelFreesPlace(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.MaxHeldRequests = 1 })
	ctx, cancel := context.WithCancel(t.Context())
	first := e.do(ctx, http.MethodGet, "/", nil, nil)
	e.waitHeld(t, 1)
	assert.Equal(t, http.StatusServiceUnavailable, wait(t, e.get(t)).code)

	cancel()
	<-first
	e.waitHeld(t, 0)
	require.Eventually(t, func() bool { return e.counter("requests", rev, "499") == 1 }, 10*time.Second, time.Millisecond)

	third := e.get(t)
	e.waitHeld(t, 1)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	assert.Equal(t, http.StatusOK, wait(t, third).code)
}

func TestTrustedHeadersCannotBeSpoofed(t *testing.T) {
	for _, secret := range []string{"s3cret", ""} {
		e := newEnv(t, 0, func(o *Options) { o.Secret = secret })
		a := newUpstream(t, "a", false)
		a.headers = make(chan http.Request, 1)
		require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
		r := wait(t, e.do(t.Context(), http.MethodGet, "/x?y=1", nil, http.Header{
			"Host":                 {"app.example"},
			hop.ActivatorHeader:    {"forged"},
			hop.RevisionHeader:     {"other-00001"},
			hop.OriginalHostHeader: {"evil.example"},
			hop.ProbeHeader:        {hop.ProbeValue},
			"Traceparent":          {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		}))
		require.Equal(t, http.StatusOK, r.code)
		got := <-a.headers
		assert.Equal(t, "app.example", got.Host, "the client's Host is kept")
		assert.Equal(t, "/x?y=1", got.RequestURI)
		assert.Equal(t, []string{rev}, got.Header.Values(hop.RevisionHeader))
		assert.Empty(t, got.Header.Values(hop.OriginalHostHeader))
		assert.Empty(t, got.Header.Values(hop.ProbeHeader))
		if secret == "" {
			assert.Empty(t, got.Header.Values(hop.ActivatorHeader))
		} else {
			assert.Equal(t, []string{secret}, got.Header.Values(hop.ActivatorHeader))
		}
		assert.Equal(t, "127.0.0.1", got.Header.Get("X-Forwarded-For"))
		assert.Equal(t, "app.example", got.Header.Get("X-Forwarded-Host"))
		assert.Equal(t, "http", got.Header.Get("X-Forwarded-Proto"))
		assert.Empty(t, got.Header.Values("Forwarded"))
		assert. // built by the queue-proxy
			Equal( // Without a TracerProvider the trace context passes through as is.
				t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", got.Header.Get("Traceparent"))
	}
}

func TestDrainingAndNotReadyGetNothing(t *testing.T) {
	e := newEnv(t, 0, nil)
	a, b, c := newUpstream(t, "a", false), newUpstream(t, "b", false), newUpstream(t, "c", false)
	draining := b.instance(true)
	draining.Draining = true
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true), draining, c.instance(false)}))
	for range 20 {
		assert.Equal(t, http.StatusOK, wait(t, e.get(t)).code)
	}
	assert.Equal(t, int64(20), a.served.Load())
	assert.Empty(t, b.served.Load()+c.served.Load())
}

// preferPolicy always picks the instance with the given ID when it is
// available, else the first available one.
type preferPolicy string

func (p preferPolicy) Pick(c []Candidate) int {
	for i := range c {
		if c[i].ID == string(p) && c[i].Available() {
			return i
		}
	}
	return FirstAvailable{}.Pick(c)
}

func TestConnectionErrorRetriedOnceWhenIdempotent(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.Policy = func(int) Policy { return preferPolicy("dead") } })
	live := newUpstream(t, "live", false)
	dead := newUpstream(t, "dead", false)
	deadInst := dead.instance(true)
	dead.Close()
	require. // connection refused from now on
			NoError(t, e.h.UpdateInstances(rev, []backend.Instance{deadInst, live.instance(true)}))

	r := wait(t, e.get(t))
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "ok live ", r.body)

	// A PUT's body was not read by the failed attempt: sent again whole.
	r = wait(t, e.do(t.Context(), http.MethodPut, "/", strings.NewReader("payload"), nil))
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "ok live payload", r.body)
	assert.Equal(t, 2.0, e.counter("retries", rev))

	// A POST is not idempotent: 502, naming the revision but neither
	// the instance nor its internal address.
	r = wait(t, e.do(t.Context(), http.MethodPost, "/", strings.NewReader("payload"), nil))
	assert.Equal(t, http.StatusBadGateway, r.code)
	assert.Contains(t, r.body, "upstream unavailable")
	if strings.Contains(r.body, "dead") || strings.Contains(r.body, "127.0.0.1") {
		t.Errorf("502 body %q names the instance or its address", r.body)
	}
	assert.Equal(t, 2.0, e.counter("retries", rev))
	require.Eventually(t, func() bool { return e.load(t).InFlight == 0 }, 10*time.Second, time.Millisecond)
}

func TestRouting404(t *testing.T) {
	e := newEnv(t, 0, nil)
	r := wait(t, e.do(t.Context(), http.MethodGet, "/", nil, http.Header{"Host": {"unknown.example"}}))
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Contains(t, r.body, errNoRoute.Error())

	e2 := newEnv(t, 0, func(o *Options) { o.Picker = picker("other-00001") })
	r = wait(t, e2.get(t))
	assert.Equal(t, http.StatusNotFound, r.code)
	assert.Contains(t, r.body, `"other-00001": unknown revision`)
	assert.ErrorIs(t, e2.h.UpdateInstances("other-00001", nil), ErrUnknownRevision)

	// Names the activator does not know get no series of their own, so a
	// Picker returning arbitrary names cannot grow the metrics.
	require.Eventually(t, func() bool { return e2.counter("requests", "", "404") == 1 }, 10*time.Second, time.Millisecond)
	require.True(t, !e2.hasSeries(t, "other-00001"), "a series for an unknown revision")
}

// A held request refused because its revision was removed is counted
// without bringing back the removed revision's series.
func TestRemovedRevisionSeriesStayGone(t *testing.T) {
	e := newEnv(t, 1, nil)
	res := e.get(t)
	e.waitHeld(t, 1)
	e.h.RemoveRevision(rev)
	assert.Equal(t, http.StatusServiceUnavailable, wait(t, res).code)
	require.Eventually(t, func() bool { return e.counter("requests", "", "503") == 1 }, 10*time.Second, time.Millisecond)
	assert.Equal(t, 1.0, e.counter("rejected", "", "revision_removed"))
	require.True(t, !e.hasSeries(t, rev), "a series for the removed revision")
}

func TestRejectReplacesThe503(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) {
		o.MaxHeldRequests = 1
		o.Reject = func(w http.ResponseWriter, r *http.Request, err error) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write([]byte("<p>starting up…</p>"))
		}
	})
	e.get(t)
	e.waitHeld(t, 1)
	r := wait(t, e.get(t))
	assert.Equal(t, http.StatusOK, r.code)
	assert.Equal(t, "<p>starting up…</p>", r.body)
}

func TestOptionsValidation(t *testing.T) {
	_, err := New(Options{MaxHeldRequests: -1, MaxHeldBytes: -2, WaitTimeout: 2 * time.Hour})
	require.Error(t, err)
	for _, want := range []string{"Options.Picker", "Options.MaxHeldRequests -1", "Options.MaxHeldBytes -2", "Options.WaitTimeout 2h0m0s"} {
		assert.Contains(t, err.Error(), want)
	}
	h, err := New(Options{Picker: picker(rev)})
	require.NoError(t, err)
	assert.ErrorContains(t, h.SetRevision(revision.Revision{}), "no name")
}

func TestMetrics(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	res := e.get(t)
	e.waitHeld(t, 1)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	assert.Equal(t, http.StatusOK, wait(t, res).code)
	require.Eventually(t, func() bool { return e.counter("requests", rev, "200") == 1 }, 10*time.Second, time.Millisecond)

	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	var names []string
	for _, mf := range mfs {
		names = append(names, mf.GetName())
	}
	assert.Equal(t, []string{
		"zeroscale_activator_cold_start_phase_seconds",
		"zeroscale_activator_cold_start_seconds",
		"zeroscale_activator_cold_start_wait_seconds",
		"zeroscale_activator_cold_starts_total",
		"zeroscale_activator_held_requests",
		"zeroscale_activator_queue_wait_seconds",
		"zeroscale_activator_request_duration_seconds",
		"zeroscale_activator_requests_total",
		"zeroscale_activator_retries_total",
	}, names)

	// A second activator on the same registry is refused, and leaves
	// nothing registered behind.
	_, err = New(Options{Picker: picker(rev), Registerer: e.reg})
	assert.ErrorContains(t, err, "registering metrics")
	mfs2, err := e.reg.Gather()
	require.NoError(t, err)
	assert.Equal(t, len(mfs), len(mfs2))

	// Removing the revision drops its series.
	e.h.RemoveRevision(rev)
	mfs, err = e.reg.Gather()
	require.NoError(t, err)
	assert.Equal(t, 0, len(mfs))
}
