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
	res := e.do(t.Context(), http.MethodGet, "/", nil, http.Header{"Traceparent": {parent}})
	e.waitHeld(t, 1)
	e.clk.Step(time.Second)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	assert.Equal(t, http.StatusOK, wait(t, res).code)

	// The instance continues the client's trace under the activator's span.
	tp2 := (<-a.headers).Header.Get("Traceparent")
	require.True(t, strings.HasPrefix(tp2, "00-"+traceID+"-") && tp2 != parent, "traceparent %s", tp2)
	require.Eventually(t, func() bool { return len(sr.Ended()) == 3 }, 10*time.Second, time.Millisecond)
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
