package backendtest

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestServeAppShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	app := App()
	served := make(chan error, 1)
	go func() { served <- serveApp(ctx, ln, app) }()

	resp, err := http.Get("http://" + ln.Addr().String() + PathHold + "?key=k")
	require.NoError(t, err)
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	line, err := body.ReadString('\n')
	require.NoError(t, err)
	require.Equal(t, "held\n", line)
	cancel()
	select {
	case err := <-served:
		require.Failf(t, "serveApp returned with a request in flight", "%v", err)
	default:
	}
	// The listener may be closed by now: release in-process.
	app.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, PathRelease+"?key=k", nil))
	rest, err := io.ReadAll(body)
	require.NoError(t, err)
	require.Equal(t, "released\n", string(rest), "the rest of the hold")
	require.NoError(t, <-served, "serveApp after ctx was cancelled")
}

func TestServeAppBadAddress(t *testing.T) {
	require.Error(t, ServeApp(t.Context(), "127.0.0.1:-1"), "ServeApp on an invalid address")
}

func TestAppBadRequests(t *testing.T) {
	srv := httptest.NewServer(App())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	code, body := get(PathHold)
	assert.Equal(t, http.StatusBadRequest, code, "hold without key")
	assert.Contains(t, body, "key", "hold without key names it")
	for i := range maxKeys {
		code, _ := get(PathRelease + "?key=" + strings.Repeat("x", i+1))
		require.Equal(t, http.StatusOK, code, "release of key %d", i)
	}
	code, _ = get(PathRelease + "?key=one-too-many")
	assert.Equal(t, http.StatusServiceUnavailable, code, "release beyond maxKeys")
	code, body = get(PathHold + "?key=x")
	assert.Equal(t, http.StatusOK, code, "hold of a released key")
	assert.Equal(t, "held\nreleased\n", body, "a hold of a released key completes at once")
	code, _ = get("/nope")
	assert.Equal(t, http.StatusNotFound, code, "unknown path")
}
