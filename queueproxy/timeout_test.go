package queueproxy

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/hop"
)

// A deadline the host put on the request (a middleware) ends a queued
// request with a 503 that says deadline, not "canceled".
func TestQueuedHostDeadlineSaysDeadline(t *testing.T) {
	g := newGate()
	r := newRig(t, g, func(o *Options) { o.ContainerConcurrency = 1 })
	go r.get("/")
	<-g.arrived
	defer close(g.release)

	req := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx, cancel := context.WithDeadline(req.Context(), time.Now().Add(-time.Second))
	defer cancel()
	rec := httptest.NewRecorder()
	r.proxy.ServeHTTP(rec, req.WithContext(ctx))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "deadline exceeded while queued", trimmed(rec.Body.String()))

	ctx, cancel = context.WithCancel(req.Context())
	cancel()
	rec = httptest.NewRecorder()
	r.proxy.ServeHTTP(rec, req.WithContext(ctx))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "request canceled while queued", trimmed(rec.Body.String()))
}

// A host deadline while the app has not answered is a gateway timeout
// that says deadline (a real deadline's cause, set without waiting).
func TestUpstreamHostDeadlineSaysDeadline(t *testing.T) {
	g := newGate()
	r := newRig(t, g, nil)
	defer close(g.release)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	ctx, expire := context.WithCancelCause(req.Context())
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() { defer close(done); r.proxy.ServeHTTP(rec, req.WithContext(ctx)) }()
	<-g.arrived
	expire(context.DeadlineExceeded)
	<-done
	require.Equal(t, http.StatusGatewayTimeout, rec.Code)
	require.Equal(t, "deadline exceeded before the app answered", trimmed(rec.Body.String()))
}

// The probe header takes exactly its value (Knative's probe handler):
// anything else is a 400, from the activator or anyone, and never
// reaches the app.
func TestProbeHeaderExactValue(t *testing.T) {
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a bad probe reached the app")
	}), func(o *Options) { o.ActivatorSecret = "k" })
	for _, hdr := range [][]string{
		{hop.ActivatorHeader, "k", hop.ProbeHeader, "activator"},
		{hop.ActivatorHeader, "k", hop.ProbeHeader, "Queue"},
		{hop.ProbeHeader, "probe"},
	} {
		code, body, _ := r.get("/", hdr...)
		require.Equal(t, http.StatusBadRequest, code, "%v", hdr)
		require.Equal(t, "unexpected probe header value", trimmed(body))
	}
}
