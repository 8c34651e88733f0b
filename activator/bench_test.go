package activator

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
)

// BenchmarkHop measures what the activator adds in front of an instance
// that answers at once: with conns client connections, it sends b.N
// requests straight to the instance and b.N through the activator, in
// the same run, and reports both p50/p95 and the added p95.
//
//	go test -run '^$' -bench Hop -benchtime 20000x ./activator/
func BenchmarkHop(b *testing.B) {
	for _, conns := range []int{10, 100} {
		b.Run(fmt.Sprintf("conns=%d", conns), func(b *testing.B) {
			app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.WriteString(w, "hello")
			}))
			defer app.Close()
			h, err := New(Options{Picker: picker(rev)})
			require.NoError(b, err)
			require.NoError(b, h.SetRevision(newRevision(b, rev, 0, 0)))
			require.NoError(b, h.UpdateInstances(rev, []backend.Instance{{ID: "a", Address: app.Listener.Addr().String(), Ready: true}}))
			front := httptest.NewServer(h)
			defer front.Close()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: conns}}
			defer client.CloseIdleConnections()

			b.ResetTimer()
			direct := measure(b, client, app.URL, conns, b.N)
			via := measure(b, client, front.URL, conns, b.N)
			b.StopTimer()
			d50, d95 := quantiles(direct)
			v50, v95 := quantiles(via)
			b.ReportMetric(float64(d50.Microseconds()), "direct-p50-µs")
			b.ReportMetric(float64(d95.Microseconds()), "direct-p95-µs")
			b.ReportMetric(float64(v50.Microseconds()), "activator-p50-µs")
			b.ReportMetric(float64(v95.Microseconds()), "activator-p95-µs")
			b.ReportMetric(float64((v95 - d95).Microseconds()), "added-p95-µs")
			b.ReportMetric(float64(v95)/float64(d95), "p95-ratio")
		})
	}
}

func measure(b *testing.B, client *http.Client, url string, conns, n int) []time.Duration {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				start := time.Now()
				res, err := client.Get(url)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Errorf("status %d", res.StatusCode)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	return lat
}

func quantiles(d []time.Duration) (p50, p95 time.Duration) {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2], s[len(s)*95/100]
}

// cannedTransport answers every request itself: BenchmarkServeHTTP
// measures the activator's own work, without sockets.
type cannedTransport struct{}

func (cannedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Header: http.Header{}, Body: http.NoBody, Request: r, ContentLength: 0}, nil
}

// BenchmarkServeHTTP compares the activator with a bare
// httputil.ReverseProxy on the same canned transport: the difference is
// routing, throttling, accounting, headers and tracing hooks.
func BenchmarkServeHTTP(b *testing.B) {
	h, err := New(Options{Picker: picker(rev), Transport: cannedTransport{}, Secret: "s"})
	require.NoError(b, err)
	require.NoError(b, h.SetRevision(newRevision(b, rev, 10, 0)))
	require.NoError(b, h.UpdateInstances(rev, []backend.Instance{{ID: "a", Address: "127.0.0.1:1", Ready: true}}))
	bare := &httputil.ReverseProxy{
		Rewrite:    func(pr *httputil.ProxyRequest) { pr.Out.URL.Scheme, pr.Out.URL.Host = "http", "127.0.0.1:1" },
		Transport:  cannedTransport{},
		BufferPool: hop.NewBufferPool(),
	}
	for _, c := range []struct {
		name string
		h    http.Handler
	}{{"bare-reverseproxy", bare}, {"activator", h}} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				c.h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
