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
	noErr(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(false)}))

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	parent := "00-" + traceID + "-00f067aa0ba902b7-01"
	res := e.do(t.Context(), http.MethodGet, "/", nil, http.Header{"Traceparent": {parent}})
	e.waitHeld(t, 1)
	e.clk.Step(time.Second)
	noErr(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	equal(t, http.StatusOK, wait(t, res).code)

	// The instance continues the client's trace under the activator's span.
	tp2 := (<-a.headers).Header.Get("Traceparent")
	mustTrue(t, strings.HasPrefix(tp2, "00-"+traceID+"-") && tp2 != parent, "traceparent ", tp2)

	eventually(t, func() bool { return len(sr.Ended()) == 3 })
	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		spans[s.Name()] = s
		equal(t, traceID, s.SpanContext().TraceID().String())
	}
	q := spans["zeroscale.activator.queued"]
	equal(t, time.Second, q.EndTime().Sub(q.StartTime()))
	var events []string
	for _, ev := range q.Events() {
		events = append(events, ev.Name)
	}
	equal(t, []string{"scale_requested", "instance_ready"}, events)
	up := spans["zeroscale.activator.upstream"]
	equal(t, "first_byte", up.Events()[0].Name)
	equal(t, spans["zeroscale.activator.request"].SpanContext().SpanID(), up.Parent().SpanID())
	equal(t, "00-"+traceID+"-"+up.SpanContext().SpanID().String()+"-01", tp2)
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
	noErr(t, e.h.UpdateInstances(rev, []backend.Instance{{ID: "s", Address: up.Listener.Addr().String(), Ready: true}}))

	res, err := e.srv.Client().Get(e.srv.URL)
	noErr(t, err)
	defer res.Body.Close()
	// The first event arrives while the instance still holds the second.
	line, err := bufio.NewReader(res.Body).ReadString('\n')
	noErr(t, err)
	equal(t, "data: one\n", line)
	equal(t, 1, e.load(t).InFlight)
}

func TestWebSocketPassesThrough(t *testing.T) {
	e := newEnv(t, 1, nil)
	up := newWebSocketUpstream(t)
	noErr(t, e.h.UpdateInstances(rev, []backend.Instance{{ID: "ws", Address: up.Listener.Addr().String(), Ready: true}}))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http"), nil)
	noErr(t, err)
	noErr(t, c.Write(ctx, websocket.MessageText, []byte("hi")))
	_, msg, err := c.Read(ctx)
	noErr(t, err)
	equal(t, "echo hi", string(msg))
	// The connection holds the instance's only slot for its whole life.
	equal(t, Load{InFlight: 1, Ready: 1, WaitTimeout: MinWait}, e.load(t))
	noErr(t, c.Close(websocket.StatusNormalClosure, ""))
	eventually(t, func() bool { return e.load(t).InFlight == 0 && e.counter("requests", rev, "101") == 1 })
}
