package zeroscale_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// warmBackend runs every revision as one ready instance in front of app:
// an in-process queue-proxy handed requests directly (one hop, as the
// process backend publishes it), or reached over a loopback listener
// (two hops, as a sidecar).
type warmBackend struct {
	app    string
	oneHop bool
	qpOpts queueproxy.Options

	mu    sync.Mutex
	revs  map[string]*backend.Broadcaster
	close []func()
}

func (w *warmBackend) Deploy(ctx context.Context, rev revision.Revision) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.revs[rev.Name()] != nil {
		return nil
	}
	o := w.qpOpts
	o.Upstream, o.Revision, o.Instance = w.app, rev.Name(), rev.Name()+"-1"
	qp, err := queueproxy.New(o)
	if err != nil {
		return err
	}
	inst := backend.Instance{ID: o.Instance, Revision: rev.Name(), Ready: true, Started: time.Now()}
	if w.oneHop {
		// Address stays set, as the process backend's: the proxy's own.
		inst.Address, inst.Handler = "127.0.0.1:1", qp
	} else {
		srv := httptest.NewUnstartedServer(qp)
		srv.Config = hop.NewServer("", qp)
		srv.Start()
		w.close = append(w.close, srv.Close)
		inst.Address = srv.Listener.Addr().String()
	}
	b := new(backend.Broadcaster)
	b.Publish([]backend.Instance{inst})
	w.revs[rev.Name()] = b
	return nil
}

func (w *warmBackend) Scale(context.Context, string, int) error { return nil }

func (w *warmBackend) Remove(_ context.Context, name string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if b := w.revs[name]; b != nil {
		b.Close()
		delete(w.revs, name)
	}
	return nil
}

func (w *warmBackend) Watch(ctx context.Context, name string) (<-chan []backend.Instance, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b := w.revs[name]
	if b == nil {
		return nil, backend.ErrNotDeployed
	}
	return b.Watch(ctx), nil
}

func (w *warmBackend) Close() error {
	for _, f := range w.close {
		f()
	}
	return nil
}

// BenchmarkFrontDoor measures the warm front door (Server.Handler: route,
// activator, queue-proxy, one hop to a loopback app) per request, in the
// same run as a plain pooled httputil.ReverseProxy to the same app, and
// the two-hop path a sidecar queue-proxy takes:
//
//	go test -run '^$' -bench FrontDoor -benchmem .
func BenchmarkFrontDoor(b *testing.B) {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Length", "13")
		_, _ = io.WriteString(w, "Hello World!\n")
	}))
	defer app.Close()
	u, _ := url.Parse(app.URL)
	rp := httputil.NewSingleHostReverseProxy(u)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = 1000, 1000
	rp.Transport, rp.BufferPool = t, hop.NewBufferPool()

	server := func(b *testing.B, oneHop bool) http.Handler {
		wb := &warmBackend{app: app.Listener.Addr().String(), oneHop: oneHop, revs: map[string]*backend.Broadcaster{}}
		srv, err := zeroscale.New(zeroscale.Options{
			NewProxiedBackend: func(_ backend.DrainFunc, o queueproxy.Options) (backend.Backend, error) {
				wb.qpOpts = o
				return wb, nil
			},
		})
		require.NoError(b, err)
		b.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
		_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
		require.NoError(b, err)
		h := srv.Handler()
		require.Eventually(b, func() bool {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "http://hello.default.localhost/", nil))
			return rec.Code == http.StatusOK
		}, 10*time.Second, time.Millisecond)
		return h
	}
	for _, c := range []struct {
		name string
		h    func(*testing.B) http.Handler
	}{
		{"plain-reverseproxy", func(*testing.B) http.Handler { return rp }},
		{"server-one-hop", func(b *testing.B) http.Handler { return server(b, true) }},
		{"server-two-hops", func(b *testing.B) http.Handler { return server(b, false) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			h := c.h(b)
			req := httptest.NewRequest(http.MethodGet, "http://hello.default.localhost/", nil)
			req.RemoteAddr = "192.0.2.9:4000"
			b.ReportAllocs()
			for b.Loop() {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatal(rec.Code, rec.Body.String())
				}
			}
		})
	}
}
