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
)

func TestServeAppShutsDownGracefully(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	app := App()
	served := make(chan error, 1)
	go func() { served <- serveApp(ctx, ln, app) }()

	resp, err := http.Get("http://" + ln.Addr().String() + PathHold + "?key=k")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if line, err := body.ReadString('\n'); err != nil || line != "held\n" {
		t.Fatalf("hold: %q, %v", line, err)
	}
	cancel()
	select {
	case err := <-served:
		t.Fatalf("serveApp returned %v with a request in flight", err)
	default:
	}
	// The listener may be closed by now: release in-process.
	app.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, PathRelease+"?key=k", nil))
	rest, err := io.ReadAll(body)
	if err != nil || string(rest) != "released\n" {
		t.Fatalf("rest of the hold: %q, %v", rest, err)
	}
	if err := <-served; err != nil {
		t.Fatalf("serveApp = %v after ctx was cancelled, want nil", err)
	}
}

func TestServeAppBadAddress(t *testing.T) {
	if err := ServeApp(t.Context(), "127.0.0.1:-1"); err == nil {
		t.Fatal("ServeApp on an invalid address returned nil")
	}
}

func TestAppBadRequests(t *testing.T) {
	srv := httptest.NewServer(App())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(PathHold); code != http.StatusBadRequest || !strings.Contains(body, "key") {
		t.Errorf("hold without key: %d %q, want 400 naming key", code, body)
	}
	for i := range maxKeys {
		if code, _ := get(PathRelease + "?key=" + strings.Repeat("x", i+1)); code != http.StatusOK {
			t.Fatalf("release of key %d: %d", i, code)
		}
	}
	if code, _ := get(PathRelease + "?key=one-too-many"); code != http.StatusServiceUnavailable {
		t.Errorf("release beyond maxKeys: %d, want 503", code)
	}
	if code, body := get(PathHold + "?key=x"); code != http.StatusOK || body != "held\nreleased\n" {
		t.Errorf("hold of a released key: %d %q, want it to complete at once", code, body)
	}
	if code, _ := get("/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d, want 404", code)
	}
}
