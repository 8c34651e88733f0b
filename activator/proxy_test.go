package activator

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/zeroscale/zeroscale/backend"
)

func TestTraceContextAndPhaseSpans(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	e := newEnv(t, 0, func(o *Options) { o.TracerProvider = tp })
	a := newUpstream(t, "a", false)
	a.headers = make(chan http.Request, 1)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(false)}))

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	held := e.clk.Now()
	res := e.do(t.Context(), http.MethodGet, "/", nil, http.Header{"Traceparent": {parent}})
	e.waitHeld(t, 1)
	// The cold start's milestones: decided 100 ms after the arrival, the
	// engine started the app at 200 ms, saw it listening at 600 ms; the
	// activator saw it ready at 1 s, and the response started then.
	e.h.ScaleFromZero(rev, held.Add(100*time.Millisecond))
	e.clk.Step(time.Second)
	ready := a.instance(true)
	ready.Started, ready.Listening = held.Add(200*time.Millisecond), held.Add(600*time.Millisecond)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{ready}))
	assert.Equal(t, http.StatusOK, wait(t, res).code)

	// The instance continues the client's trace under the activator's span.
	tp2 := (<-a.headers).Header.Get("Traceparent")
	require.True(t, strings.HasPrefix(tp2, "00-"+traceID+"-") && tp2 != parent, "traceparent %s", tp2)
	require.Eventually(t, func() bool { return len(sr.Ended()) == 3+1+len(phases) }, 10*time.Second, time.Millisecond)
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		spans[s.Name()] = s
		assert.Equal(t, traceID, s.SpanContext().TraceID().String())
	}
	q := spans["zeroscale.activator.queued"]
	assert.Equal(t, time.Second, q.EndTime().Sub(q.StartTime()))
	var events []string
	for _, ev := range q.Events() {
		events = append(events, ev.Name)
	}
	assert.Equal(t, []string{"scale_requested", "instance_ready"}, events)
	up := spans["zeroscale.activator.upstream"]
	assert.Equal(t, "first_byte", up.Events()[0].Name)
	assert.Equal(t, spans["zeroscale.activator.request"].SpanContext().SpanID(), up.Parent().SpanID())
	assert.Equal(t, "00-"+traceID+"-"+up.SpanContext().SpanID().String()+"-01", tp2)

	// One span per phase under zeroscale.cold_start, back to back from
	// the arrival to the first byte.
	cs := spans["zeroscale.cold_start"]
	assert.Equal(t, spans["zeroscale.activator.request"].SpanContext().SpanID(), cs.Parent().SpanID())
	assert.Equal(t, held, cs.StartTime())
	assert.Equal(t, held.Add(time.Second), cs.EndTime())
	want := map[string]time.Duration{PhaseScaleDecision: 100 * time.Millisecond, PhaseEngineStart: 100 * time.Millisecond,
		PhaseAppListening: 400 * time.Millisecond, PhaseProbePassed: 400 * time.Millisecond, PhaseFirstByte: 0}
	at := held
	for _, p := range phases {
		s := spans["zeroscale.cold_start."+p]
		require.NotNil(t, s, p)
		assert.Equal(t, cs.SpanContext().SpanID(), s.Parent().SpanID(), p)
		assert.Equal(t, at, s.StartTime(), p)
		assert.Equal(t, want[p], s.EndTime().Sub(s.StartTime()), p)
		at = s.EndTime()
	}
	assert.Equal(t, 1.0, e.histogramSum(t, "zeroscale_activator_cold_start_seconds", map[string]string{"revision": rev}))
	for p, d := range want {
		assert.InDelta(t, d.Seconds(), e.histogramSum(t, "zeroscale_activator_cold_start_phase_seconds", map[string]string{"revision": rev, "phase": p}), 1e-9, p)
	}
}

// A request held after the decision, or whose instance's engine says
// nothing of its start, has those phases empty: the phases still start
// at its arrival and add up to its time to first byte.
func TestColdStartPhasesClamped(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(false)}))
	e.h.ScaleFromZero(rev, e.clk.Now().Add(-time.Hour)) // a stale decision
	res := e.do(t.Context(), http.MethodGet, "/", nil, nil)
	e.waitHeld(t, 1)
	e.clk.Step(300 * time.Millisecond)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	assert.Equal(t, http.StatusOK, wait(t, res).code)
	l := map[string]string{"revision": rev}
	assert.InDelta(t, 0.3, e.histogramSum(t, "zeroscale_activator_cold_start_seconds", l), 1e-9)
	for _, p := range phases {
		l["phase"] = p
		want := 0.0
		if p == PhaseProbePassed {
			want = 0.3
		}
		assert.InDelta(t, want, e.histogramSum(t, "zeroscale_activator_cold_start_phase_seconds", l), 1e-9, p)
	}
}

func TestStreamingResponsesAreFlushed(t *testing.T) {
	e := newEnv(t, 0, nil)
	gate := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = w.Write([]byte("data: one\n\n"))
		w.(http.Flusher).Flush()
		<-gate
		_, _ = w.Write([]byte("data: two\n\n"))
	}))
	t.Cleanup(up.Close)
	t.Cleanup(func() { close(gate) })
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{{ID: "s", Address: up.Listener.Addr().String(), Ready: true}}))

	res, err := e.srv.Client().Get(e.srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	// The first event arrives while the instance still holds the second.
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: one\n", line)
	assert.Equal(t, 1, e.load(t).InFlight)
}

func TestWebSocketPassesThrough(t *testing.T) {
	e := newEnv(t, 1, nil)
	up := newWebSocketUpstream(t)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{{ID: "ws", Address: up.Listener.Addr().String(), Ready: true}}))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http"), nil)
	require.NoError(t, err)
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("hi")))
	_, msg, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "echo hi", string(msg))
	// The connection holds the instance's only slot for its whole life.
	assert.Equal(t, Load{InFlight: 1, Serving: 1, WaitTimeout: MinWait}, e.load(t))
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	require.Eventually(t, func() bool { return e.load(t).InFlight == 0 && e.counter("requests", rev, "101") == 1 }, 10*time.Second, time.Millisecond)
}
