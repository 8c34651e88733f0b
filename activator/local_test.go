package activator

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/stats"
)

// An instance whose queue-proxy lives in this process (Instance.Handler)
// is served in one hop: the activator hands the request to it, never
// dialing Address, and the app sees what it would over two hops from the
// edge: the internal headers gone, X-Forwarded-* and Forwarded of the
// client (no loopback hop), its Host; the queue-proxy counts it as
// proxied; the client's request is not modified.
func TestHandOverToInProcessQueueProxy(t *testing.T) {
	seen := make(chan http.Header, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Clone()
		h.Set("Host", r.Host)
		seen <- h
		_, _ = io.WriteString(w, "hello")
	}))
	defer app.Close()
	clk := clocktesting.NewFakeClock(time.Now())
	reports := make(chan stats.Stat, 10)
	qp, err := queueproxy.New(queueproxy.Options{
		Upstream: app.Listener.Addr().String(), Revision: rev, Instance: "a",
		Clock: clk, Reporter: stats.ReporterFunc(func(_ string, s stats.Stat) { reports <- s }),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = qp.Run(ctx) }()

	h, err := New(Options{Picker: picker(rev), Secret: "s"})
	require.NoError(t, err)
	require.NoError(t, h.SetRevision(newRevision(t, rev, 0, 0)))
	// Address is a port nobody listens on: a dial would fail.
	require.NoError(t, h.UpdateInstances(rev, []backend.Instance{{ID: "a", Address: "127.0.0.1:1", Ready: true, Handler: qp}}))

	req := httptest.NewRequest(http.MethodGet, "http://hello.example/x", nil)
	req.RemoteAddr = "192.0.2.9:4000"
	for _, k := range []string{"Zeroscale-Activator", "Zeroscale-Revision", "Zeroscale-Probe", "Zeroscale-Original-Host"} {
		req.Header.Set(k, "forged")
	}
	req.Header.Set("X-Forwarded-For", "203.0.113.7")
	req.Header.Set("Forwarded", "for=203.0.113.7")
	before := req.Header.Clone()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	assert.Equal(t, "hello", rec.Body.String())
	assert.Equal(t, before, req.Header, "the client's request is not written to")

	got := <-seen
	assert.Equal(t, "hello.example", got.Get("Host"))
	assert.Equal(t, "192.0.2.9", got.Get("X-Forwarded-For"))
	assert.Equal(t, "http", got.Get("X-Forwarded-Proto"))
	assert.Equal(t, "hello.example", got.Get("X-Forwarded-Host"))
	assert.Equal(t, "for=192.0.2.9;host=hello.example;proto=http", got.Get("Forwarded"))
	for k := range got {
		assert.False(t, strings.HasPrefix(k, "Zeroscale-"), "the app got %s", k)
	}

	// The queue-proxy counted it, as proxied by the activator.
	require.Eventually(t, func() bool {
		clk.Step(queueproxy.ReportingPeriod)
		select {
		case s := <-reports:
			if s.RequestCount > 0 {
				assert.Equal(t, s.RequestCount, s.ProxiedRequestCount)
				return true
			}
		default:
		}
		return false
	}, 10*time.Second, time.Millisecond)
	load, _ := h.Load(rev)
	assert.Zero(t, load.InFlight, "the slot was released")
}

// A held request handed over in process gets the cold-start header and
// the activator's bound until its response starts (504), as over a hop.
func TestHandOverHeldRequest(t *testing.T) {
	release := make(chan struct{})
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}
		_, _ = io.WriteString(w, "hello")
	}))
	defer app.Close()
	defer close(release)
	qp, err := queueproxy.New(queueproxy.Options{Upstream: app.Listener.Addr().String(), Revision: rev, Instance: "a"})
	require.NoError(t, err)
	h, err := New(Options{Picker: picker(rev)})
	require.NoError(t, err)
	require.NoError(t, h.SetRevision(newRevision(t, rev, 0, 300*time.Millisecond)))
	require.NoError(t, h.UpdateInstances(rev, nil))

	serve := func(path string) *httptest.ResponseRecorder {
		done := make(chan *httptest.ResponseRecorder)
		go func() {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://hello.example"+path, nil))
			done <- rec
		}()
		require.Eventually(t, func() bool { l, _ := h.Load(rev); return l.Held == 1 }, 10*time.Second, time.Millisecond)
		require.NoError(t, h.UpdateInstances(rev, []backend.Instance{{ID: "a", Address: "127.0.0.1:1", Ready: true, Handler: qp}}))
		rec := <-done
		require.NoError(t, h.UpdateInstances(rev, nil))
		return rec
	}
	rec := serve("/")
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.NotEmpty(t, rec.Header().Get(ColdStartHeader))

	rec = serve("/slow")
	assert.Equal(t, http.StatusGatewayTimeout, rec.Code)
	assert.Contains(t, rec.Body.String(), "request timeout before the response started")
}
