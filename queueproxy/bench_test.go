package queueproxy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/zeroscale/zeroscale/internal/hop"
)

// The hop benchmarks compare the queue-proxy with a plain
// httputil.ReverseProxy (idle pool sized like ours) in the same run:
//
//	go test -run XXX -bench Hop -benchmem ./queueproxy/
//
// plainRP is httputil.NewSingleHostReverseProxy as people use it (a
// fresh 32 KiB copy buffer per request); plainRP-pooled adds our buffer
// pool. BenchmarkHopHandler calls ServeHTTP directly (the proxy's own cost
// plus the upstream round trip); BenchmarkHopServer goes through real
// loopback front and upstream servers with a keep-alive client.

var hello = http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Length", "13")
	_, _ = io.WriteString(w, "Hello World!\n")
})

func plainReverseProxy(b *testing.B, upstream string, pool httputil.BufferPool) http.Handler {
	u, err := url.Parse(upstream)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = unlimitedIdleConns, unlimitedIdleConns
	rp.Transport = t
	rp.BufferPool = pool
	return rp
}

func hopCases(b *testing.B, upstream *httptest.Server) []struct {
	name string
	h    http.Handler
} {
	qp := func(cc int) http.Handler {
		p, err := New(Options{Upstream: upstream.Listener.Addr().String(), ContainerConcurrency: cc})
		if err != nil {
			b.Fatal(err)
		}
		return p
	}
	return []struct {
		name string
		h    http.Handler
	}{
		{"plainRP", plainReverseProxy(b, upstream.URL, nil)},
		// The same with our buffer pool: isolates what the
		// queue-proxy's own work costs.
		{"plainRP-pooled", plainReverseProxy(b, upstream.URL, hop.NewBufferPool())},
		{"queueproxy-cc0", qp(0)},
		{"queueproxy-cc10", qp(10)},
	}
}

func BenchmarkHopHandler(b *testing.B) {
	upstream := httptest.NewServer(hello)
	defer upstream.Close()
	for _, c := range hopCases(b, upstream) {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					rec := httptest.NewRecorder()
					c.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
					if rec.Code != http.StatusOK {
						b.Errorf("status %d", rec.Code)
						return
					}
				}
			})
		})
	}
}

func BenchmarkHopServer(b *testing.B) {
	upstream := httptest.NewServer(hello)
	defer upstream.Close()
	cases := append([]struct {
		name string
		h    http.Handler
	}{{"direct", nil}}, hopCases(b, upstream)...)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			target := upstream.URL
			if c.h != nil {
				front := httptest.NewServer(c.h)
				defer front.Close()
				target = front.URL
			}
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
			defer client.CloseIdleConnections()
			b.ReportAllocs()
			b.SetParallelism(4)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					res, err := client.Get(target)
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, res.Body)
					_ = res.Body.Close()
				}
			})
		})
	}
}
