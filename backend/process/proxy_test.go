package process_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// testProxy is a minimal Proxy and Prober: a reverse proxy that counts
// requests in flight and probes its app over TCP.
type testProxy struct {
	target   string
	rp       *httputil.ReverseProxy
	inFlight sync.WaitGroup
	probes   atomic.Int64
	drains   chan struct{} // receives when Drain starts
}

func (p *testProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.inFlight.Add(1)
	defer p.inFlight.Done()
	p.rp.ServeHTTP(w, r)
}

func (p *testProxy) Drain(ctx context.Context) error {
	p.drains <- struct{}{}
	done := make(chan struct{})
	go func() {
		p.inFlight.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *testProxy) Probe(ctx context.Context) error {
	p.probes.Add(1)
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.target)
	if err != nil {
		return err
	}
	return c.Close()
}

// healthProxy fronts like testProxy but is no Prober: it answers the
// queue-proxy health check instead, and has a Run method.
type healthProxy struct {
	p       *testProxy
	running atomic.Int64
}

func (h *healthProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != queueproxy.HealthPath {
		h.p.ServeHTTP(w, r)
		return
	}
	if err := h.p.Probe(r.Context()); err != nil {
		http.Error(w, "not ready", http.StatusServiceUnavailable)
	}
}

func (h *healthProxy) Drain(ctx context.Context) error { return h.p.Drain(ctx) }

func (h *healthProxy) Run(ctx context.Context) error {
	h.running.Add(1)
	defer h.running.Add(-1)
	<-ctx.Done()
	return nil
}

func newTestProxy(target string) (*testProxy, error) {
	u, err := url.Parse("http://" + target)
	if err != nil {
		return nil, err
	}
	return &testProxy{target: target, rp: httputil.NewSingleHostReverseProxy(u), drains: make(chan struct{}, 1)}, nil
}

func TestProxyHealthCheckAndRun(t *testing.T) {
	proxies := make(chan *healthProxy, 1)
	b := newBackend(t, process.Options{
		Proxy: func(inst backend.Instance, target string, spec revision.Spec) (process.Proxy, error) {
			p, err := newTestProxy(target)
			if err != nil {
				return nil, err
			}
			h := &healthProxy{p: p}
			proxies <- h
			return h, nil
		},
	})
	rev := deploy(t, b, "health-00001", testapp.Serve)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]
	h := <-proxies
	require.True(t, h.p.probes.Load() > 0, "readiness asked the proxy's health check")
	require.EqualValues(t, int64(1), h.running.Load(), "the proxy's Run runs")
	require.EqualValues(t, "ok\n", get(t, "http://"+inst.Address+"/"))
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	<-h.p.drains
	next(t, ch, "no instance", empty)
	require.EqualValues(t, int64(0), h.running.Load(), "Run returned once the instance stopped")
}

func TestProxyFrontsInstances(t *testing.T) {
	proxies := make(chan *testProxy, 1)
	var hookDone atomic.Bool
	b := newBackend(t, process.Options{
		Drain: func(context.Context, backend.Instance) error {
			hookDone.Store(true)
			return nil
		},
		Proxy: func(inst backend.Instance, target string, spec revision.Spec) (process.Proxy, error) {
			p, err := newTestProxy(target)
			if err != nil {
				return nil, err
			}
			proxies <- p
			return p, nil
		},
	})
	rev := deploy(t, b, "fronted-00001", testapp.Serve)
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]
	p := <-proxies
	st := status(t, b, rev.Name()).Instances[0]
	require.True(t, inst.Address != st.AppAddress, "Address %s is the proxy's, not the app's %s", inst.Address, st.AppAddress)
	require.EqualValues(t, p.target, st.AppAddress)
	require.True(t, p.probes.Load() > 0, "readiness came from the proxy's probe")
	require.Nil(t, inst.Handler, "only a queue-proxy is handed requests in process")
	require.EqualValues(t, "ok\n", get(t, "http://"+inst.Address+"/"))

	// A request in flight through the proxy survives scale-down: the
	// proxy drains (after the host's hook) before the app gets SIGTERM.
	released := hold(t, inst.Address, "p")
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	<-p.drains
	require.True(t, hookDone.Load(), "the DrainFunc ran before the proxy drained")
	require.EqualValues(t, "ok\n", get(t, "http://"+st.AppAddress+"/release?key=p"))
	released()
	next(t, ch, "no instance", empty)
	_, err = net.Dial("tcp", inst.Address)
	require.Error(t, err, "the proxy's listener is closed once the instance stopped")
}

func TestQueueProxyFront(t *testing.T) {
	b := newBackend(t, process.Options{Proxy: process.QueueProxy(queueproxy.Options{})})
	rev := deploy(t, b, "queued-00001", testapp.Serve, func(s *revision.Spec) { s.ContainerConcurrency = 1 })
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]
	st := status(t, b, rev.Name()).Instances[0]
	require.True(t, inst.Address != st.AppAddress, "the queue-proxy fronts the app")
	require.IsType(t, &queueproxy.Proxy{}, inst.Handler, "a ready instance offers its in-process queue-proxy (one hop)")
	require.EqualValues(t, "ready", strings.TrimSpace(get(t, "http://"+inst.Address+queueproxy.HealthPath)))

	// A request in flight through the queue-proxy survives scale-down:
	// its Drain waits for it before the app gets SIGTERM.
	released := hold(t, inst.Address, "q")
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	next(t, ch, "draining", func(s []backend.Instance) bool { return len(s) == 1 && s[0].Draining })
	require.EqualValues(t, backend.InstanceDraining, status(t, b, rev.Name()).Instances[0].State, "held by the queue-proxy's drain")
	require.EqualValues(t, "ok\n", get(t, "http://"+st.AppAddress+"/release?key=q"))
	released()
	next(t, ch, "no instance", empty)
}
