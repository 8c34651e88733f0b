package queueproxy

import (
	"context"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// noQuiet gives a rig the in-process fast drain (no quiet period).
func noQuiet(o *Options) { o.DrainQuietPeriod = -1 }

// Knative's drain: health turns 503 at once, requests keep being
// served, and Drain returns only once DefaultDrainQuietPeriod has passed
// with no new request, the wait restarting on each arrival.
func TestDrainWaitsQuietPeriodRestartedByRequests(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/fast", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fast") })
	r := newRig(t, mux, nil)

	drained := make(chan error, 1)
	go func() { drained <- r.proxy.Drain(context.Background()) }()
	require.Eventually(t, r.proxy.Draining, waitTimeout, time.Millisecond)
	code, body, _ := r.get(HealthPath)
	require.Equal(t, http.StatusServiceUnavailable, code)
	require.Equal(t, "draining", trimmed(body))

	require.Eventually(t, func() bool { return len(drained) > 0 || r.clock.HasWaiters() }, waitTimeout, time.Millisecond) // the quiet timer
	r.clock.Step(20 * time.Second)
	require.Empty(t, drained, "Drain returned before the quiet period")
	code, body, _ = r.get("/fast")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "fast", body)

	// 30 s after Drain, but only 10 s after the last request.
	r.clock.Step(10 * time.Second)
	require.Eventually(t, func() bool { return len(drained) > 0 || r.clock.HasWaiters() }, waitTimeout, time.Millisecond) // the restarted quiet timer
	require.Empty(t, drained, "Drain returned although a request arrived 10 s ago")
	r.clock.Step(20 * time.Second)
	require.NoError(t, <-drained)
}

// A request in flight when the quiet period ends holds Drain until it
// is done; one that arrived before Drain does not restart the period.
func TestDrainAfterQuietPeriodWaitsForInFlight(t *testing.T) {
	g := newGate()
	r := newRig(t, g, func(o *Options) { o.DrainQuietPeriod = 5 * time.Second })
	slow := make(chan string)
	go func() { _, b, _ := r.get("/"); slow <- b }()
	<-g.arrived

	drained := make(chan error, 1)
	go func() { drained <- r.proxy.Drain(context.Background()) }()
	require.Eventually(t, func() bool { return len(drained) > 0 || r.proxy.Draining() && r.clock.Waiters() == 2 }, waitTimeout, time.Millisecond) // request timeout, quiet timer
	r.clock.Step(5 * time.Second)
	require.Eventually(t, func() bool { return len(drained) > 0 || r.clock.Waiters() == 2 }, waitTimeout, time.Millisecond) // request timeout, upgrade drain limit
	require.Empty(t, drained, "Drain returned with a request in flight")
	close(g.release)
	require.Equal(t, "done", <-slow)
	require.NoError(t, <-drained)
}

// A second Drain counts the quiet period from the first call.
func TestDrainAgainKeepsFirstStart(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), func(o *Options) { o.DrainQuietPeriod = 5 * time.Second })
	first := make(chan error, 1)
	go func() { first <- r.proxy.Drain(context.Background()) }()
	require.Eventually(t, func() bool { return len(first) > 0 || r.clock.HasWaiters() }, waitTimeout, time.Millisecond)
	r.clock.Step(5 * time.Second)
	require.NoError(t, <-first)
	require.NoError(t, r.proxy.Drain(context.Background()))
}

func TestDrainQuietPeriodHonoursContext(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	require.ErrorIs(t, r.proxy.Drain(ctx), context.Canceled)
}
