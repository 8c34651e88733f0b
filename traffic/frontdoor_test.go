package traffic

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBareHost(t *testing.T) {
	var tbl Table
	hello := newRoute(t, RouteConfig{Name: "hello", Namespace: "default", Domain: "localhost"})
	require.NoError(t, tbl.Add(hello))
	var seen *http.Request
	b := &BareHost{
		Next:   http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen = r }),
		Table:  &tbl,
		Domain: "localhost",
		Header: "Zeroscale-Service",
	}
	for _, tc := range []struct {
		host, path, header string
		wantHost, wantPath string
	}{
		{"localhost:8080", "/hello/x?y=1", "", "hello.default.localhost", "/x"},
		{"127.0.0.1:8080", "/hello", "", "hello.default.localhost", "/"},
		{"[::1]:8080", "/other/x", "", "[::1]:8080", "/other/x"}, // no such route: unchanged
		{"localhost", "/x", "hello", "hello.default.localhost", "/x"},
		{"localhost", "/x", "v2-hello.default", "v2-hello.default.localhost", "/x"},
		{"hello.default.localhost", "/hello/x", "", "hello.default.localhost", "/hello/x"}, // not bare
		{"example.org", "/x", "hello", "example.org", "/x"},
	} {
		r := httptest.NewRequest(http.MethodGet, "http://"+tc.host+tc.path, nil)
		if tc.header != "" {
			r.Header.Set("Zeroscale-Service", tc.header)
		}
		b.ServeHTTP(httptest.NewRecorder(), r)
		require.NotNil(t, seen)
		assert.Equal(t, tc.wantHost, seen.Host, "%s%s", tc.host, tc.path)
		assert.Equal(t, tc.wantPath, seen.URL.Path, "%s%s", tc.host, tc.path)
		if seen.Host != tc.host {
			assert.Empty(t, seen.Header.Get("Zeroscale-Service"), "the header is removed")
		}
	}
}
