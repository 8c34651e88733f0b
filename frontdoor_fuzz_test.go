package zeroscale_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// FuzzFrontDoor sends requests whose Host, service header, tag header,
// path and forwarding headers are anything a client may send through the
// Server's Handler: nothing panics, every answer is one the front door
// documents, and no answer shows an internal address.
func FuzzFrontDoor(f *testing.F) {
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain})
	}})
	require.NoError(f, err)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(f, err)
	require.Eventually(f, func() bool {
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "http://hello.default.localhost/", nil))
		return rec.Code == http.StatusOK
	}, 10*time.Second, 5*time.Millisecond)

	f.Add("hello.default.localhost", "", "", "/", "")
	f.Add("localhost:8080", "hello", "", "/x", "1.2.3.4")
	f.Add("127.0.0.1", "", "", "/hello/a/b", "")
	f.Add("LOCALHOST.", "hello.default", "blue", "/", "")
	f.Add("[::1]:80", "../etc", "x", "//hello", "")
	f.Add("nope.default.localhost", "", "", "/", "")
	f.Fuzz(func(t *testing.T, host, service, tag, path, xff string) {
		for _, v := range []string{host, service, tag, path, xff} {
			if strings.ContainsAny(v, "\r\n\x00") {
				return // net/http refuses these before any handler
			}
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest("GET", "http://placeholder"+path, nil)
		if err != nil {
			return // not a request line net/http would parse
		}
		req.Host = host
		req.RemoteAddr = "192.0.2.1:1234"
		for k, v := range map[string]string{zeroscale.ServiceHeader: service, traffic.TagHeader: tag, "X-Forwarded-For": xff} {
			if v != "" {
				req.Header.Set(k, v)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req.WithContext(ctx))
		switch rec.Code {
		case http.StatusOK, http.StatusNotFound, http.StatusServiceUnavailable:
		default:
			t.Fatalf("%s %q (service %q, tag %q): %d %q", host, path, service, tag, rec.Code, rec.Body.String())
		}
		require.NotContains(t, rec.Body.String(), "127.0.0.1:", "an internal address in the answer")
	})
}
