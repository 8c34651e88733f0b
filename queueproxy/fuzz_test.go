package queueproxy

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/hop"
)

// FuzzInternalHeaders feeds the headers a queue-proxy interprets (the
// activator's secret, the original host, the probe marker, the revision)
// with any values, as a client reaching the queue-proxy directly could
// send them: nothing panics, no internal header ever reaches the app,
// and only the right secret makes a request trusted (the Host it names
// is used only then).
func FuzzInternalHeaders(f *testing.F) {
	const secret = "s3cret"
	var leaked atomic.Value
	var gotHost atomic.Value
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k := range r.Header {
			if strings.HasPrefix(k, "Zeroscale-") {
				leaked.Store(k)
			}
		}
		gotHost.Store(r.Host)
	}))
	f.Cleanup(app.Close)
	p, err := New(Options{Upstream: app.Listener.Addr().String(), ActivatorSecret: secret})
	require.NoError(f, err)

	f.Add(secret, "orig.example", "", "hello-00001")
	f.Add("wrong", "evil.example", hop.ProbeValue, "")
	f.Add("", "", "queue", "x")
	f.Add(secret, "", hop.ProbeValue, "")
	f.Fuzz(func(t *testing.T, activator, origHost, probe, rev string) {
		req := httptest.NewRequest("GET", "http://app.example/x", nil)
		for k, v := range map[string]string{hop.ActivatorHeader: activator, hop.OriginalHostHeader: origHost,
			hop.ProbeHeader: probe, hop.RevisionHeader: rev} {
			if v != "" && !strings.ContainsAny(v, "\r\n\x00") {
				req.Header[k] = []string{v}
			}
		}
		leaked.Store("")
		gotHost.Store("")
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, req)
		require.Empty(t, leaked.Load(), "an internal header reached the app")
		if h := gotHost.Load().(string); h != "" && h != "app.example" {
			require.Equal(t, secret, activator, "Host %q taken from an untrusted request", h)
		}
	})
}
