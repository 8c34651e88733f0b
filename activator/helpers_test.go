package activator

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"
	testingclock "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

const rev = "hello-00001"

var errNoRoute = errors.New("no route for host")

// picker routes every host but unknown.example to one revision.
type picker string

func (p picker) PickRevision(r *http.Request) (string, error) {
	if r.Host == "unknown.example" {
		return "", errNoRoute
	}
	return string(p), nil
}

func newRevision(t testing.TB, name string, cc int, timeout time.Duration) revision.Revision {
	t.Helper()
	spec := revision.Spec{Command: []string{"app"}, ContainerConcurrency: cc, Timeouts: revision.Timeouts{Request: timeout}}
	r, err := revision.New("hello", name, 1, spec, time.Time{})
	require.NoError(t, err)
	return r
}

// upstream is an instance: a loopback server that counts its requests in
// flight and, when gated, holds each until the gate opens.
type upstream struct {
	*httptest.Server
	id       string
	inFlight atomic.Int64
	max      atomic.Int64
	served   atomic.Int64
	gate     chan struct{}
	open     sync.Once
	headers  chan http.Request // a copy of each request's head, when not nil
}

func newUpstream(t testing.TB, id string, gated bool) *upstream {
	u := &upstream{id: id}
	if gated {
		u.gate = make(chan struct{})
	}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == hop.HealthPath {
			// Not a queue-proxy: the activator's own probe never passes.
			http.NotFound(w, r)
			return
		}
		n := u.inFlight.Add(1)
		defer u.inFlight.Add(-1)
		for m := u.max.Load(); n > m && !u.max.CompareAndSwap(m, n); m = u.max.Load() {
		}
		if u.headers != nil {
			u.headers <- *r.Clone(context.Background())
		}
		body, _ := io.ReadAll(r.Body)
		if u.gate != nil {
			<-u.gate
		}
		u.served.Add(1)
		_, _ = io.WriteString(w, "ok "+u.id+" "+string(body))
	}))
	t.Cleanup(u.Close)
	t.Cleanup(u.release) // runs first: Close waits for gated requests
	return u
}

func (u *upstream) release() {
	if u.gate != nil {
		u.open.Do(func() { close(u.gate) })
	}
}

// newWebSocketUpstream is an instance that accepts WebSocket upgrades
// and answers each message m with "echo m" until the client closes.
func newWebSocketUpstream(t testing.TB) *httptest.Server {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil || c.Write(r.Context(), typ, append([]byte("echo "), msg...)) != nil {
				return
			}
		}
	}))
	t.Cleanup(up.Close)
	return up
}

func (u *upstream) instance(ready bool) backend.Instance {
	return backend.Instance{ID: u.id, Revision: rev, Address: u.Listener.Addr().String(), Ready: ready}
}

// env is an activator on a fake clock behind a loopback server.
type env struct {
	h       *Handler
	srv     *httptest.Server
	clk     *testingclock.FakeClock
	reg     *prometheus.Registry
	reports chan stats.Stat
}

func newEnv(t testing.TB, cc int, mutate func(*Options)) *env {
	t.Helper()
	e := &env{
		clk:     testingclock.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)),
		reg:     prometheus.NewRegistry(),
		reports: make(chan stats.Stat, 100),
	}
	o := Options{
		Picker:     picker(rev),
		Secret:     "s3cret",
		Clock:      e.clk,
		Registerer: e.reg,
		Reporter: stats.ReporterFunc(func(r string, s stats.Stat) {
			if r == rev {
				e.reports <- s
			}
		}),
	}
	if mutate != nil {
		mutate(&o)
	}
	h, err := New(o)
	require.NoError(t, err)
	require.NoError(t, h.SetRevision(newRevision(t, rev, cc, 0)))
	e.h = h
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	t.Cleanup(func() { h.RemoveRevision(rev) }) // frees held requests first
	return e
}

func (e *env) load(t testing.TB) Load {
	l, ok := e.h.Load(rev)
	require.True(t, ok)
	return l
}

// waitHeld waits until n requests are held: they arrive over real
// sockets, so this is a poll with a timeout.
func (e *env) waitHeld(t testing.TB, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return e.load(t).Held == n }, 10*time.Second, time.Millisecond, "held requests ≠ %d", n)
}

type result struct {
	code   int
	body   string
	header http.Header
	err    error
}

// do sends a request through the activator in the background.
func (e *env) do(ctx context.Context, method, path string, body io.Reader, hdr http.Header) <-chan result {
	ch := make(chan result, 1)
	go func() {
		req, err := http.NewRequestWithContext(ctx, method, e.srv.URL+path, body)
		if err != nil {
			ch <- result{err: err}
			return
		}
		for k, v := range hdr {
			req.Header[k] = v
		}
		if h := hdr.Get("Host"); h != "" {
			req.Host = h
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			ch <- result{err: err}
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		ch <- result{code: res.StatusCode, body: string(b), header: res.Header, err: err}
	}()
	return ch
}

func (e *env) get(t testing.TB) <-chan result {
	return e.do(t.Context(), http.MethodGet, "/", nil, nil)
}

func wait(t testing.TB, ch <-chan result) result {
	t.Helper()
	select {
	case r := <-ch:
		require.NoError(t, r.err)
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("no response within 10 s")
		return result{}
	}
}

func (e *env) counter(name string, labels ...string) float64 {
	var c prometheus.Metric
	m := e.h.metrics
	switch name {
	case "requests":
		c = m.requests.WithLabelValues(labels...).(prometheus.Metric)
	case "rejected":
		c = m.rejected.WithLabelValues(labels...).(prometheus.Metric)
	case "retries":
		c = m.retries.WithLabelValues(labels...).(prometheus.Metric)
	case "coldStarts":
		c = m.coldStarts.WithLabelValues(labels...).(prometheus.Metric)
	}
	var d dto.Metric
	if err := c.Write(&d); err != nil {
		panic(err)
	}
	return d.GetCounter().GetValue()
}

func (e *env) nextReport(t testing.TB) stats.Stat {
	t.Helper()
	select {
	case s := <-e.reports:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no report within 10 s")
		return stats.Stat{}
	}
}

func (e *env) noReport(t testing.TB) {
	t.Helper()
	select {
	case s := <-e.reports:
		t.Fatalf("unexpected report %+v", s)
	default:
	}
}

// hasSeries reports whether a registered series has revision label rev.
func (e *env) hasSeries(t testing.TB, rev string) bool {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "revision" && l.GetValue() == rev {
					return true
				}
			}
		}
	}
	return false
}

// histogramSum is the sum of the one histogram series of name with
// labels want, as a scrape would show it.
func (e *env) histogramSum(t testing.TB, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := e.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if got[k] != v {
					continue next
				}
			}
			return m.GetHistogram().GetSampleSum()
		}
	}
	t.Fatalf("no %s series with labels %v", name, want)
	return 0
}
