package activator

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
)

// When the revision's request timeout is the shorter bound, a held
// request gets Knative's 504 when it passes, not the hold deadline's 503.
func TestHeldPastRequestTimeoutIs504(t *testing.T) {
	e := newEnv(t, 1, nil)
	require.NoError(t, e.h.SetRevision(newRevision(t, rev, 1, 5*time.Second)))
	res := e.get(t)
	e.waitHeld(t, 1)
	e.clk.Step(5 * time.Second)
	r := wait(t, res)
	require.Equal(t, http.StatusGatewayTimeout, r.code)
	require.Contains(t, r.body, "request timeout while held: no instance became ready within 5s")
	require.Empty(t, r.header.Get("Retry-After"))
	require.Equal(t, 1.0, e.counter("rejected", rev, "request_timeout"))
}

// A request held 3 s of its 5 s timeout gets 504 when the instance it
// was sent to has not started answering 2 s later.
func TestHeldThenSlowResponseStartIs504(t *testing.T) {
	e := newEnv(t, 1, nil)
	require.NoError(t, e.h.SetRevision(newRevision(t, rev, 1, 5*time.Second)))
	res := e.get(t)
	e.waitHeld(t, 1)
	e.clk.Step(3 * time.Second)
	u := newUpstream(t, "a", true)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{u.instance(true)}))
	require.Eventually(t, func() bool { return u.inFlight.Load() == 1 }, 10*time.Second, time.Millisecond, "request not at the instance")
	e.clk.Step(2 * time.Second)
	r := wait(t, res)
	require.Equal(t, http.StatusGatewayTimeout, r.code)
	require.Contains(t, r.body, "request timeout before the response started")
}

// A held request whose context ends with a deadline the host set (a
// middleware) gets a 503 that says deadline, never an empty 200.
func TestHostDeadlineWhileHeldIsAnswered(t *testing.T) {
	e := newEnv(t, 1, nil)
	ctx, expire := context.WithCancelCause(t.Context())
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx))
	}()
	e.waitHeld(t, 1)
	expire(context.DeadlineExceeded) // as context.WithTimeout ends it
	<-done
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Contains(t, rec.Body.String(), "deadline exceeded while held")
	require.Equal(t, "1", rec.Header().Get("Retry-After"))
	require.Equal(t, 1.0, e.counter("rejected", rev, "deadline"))
}
