package queueproxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/zeroscale/zeroscale/revision"
)

// echoWS is an app that echoes WebSocket messages until the peer closes.
var echoWS = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	for {
		typ, msg, err := c.Read(r.Context())
		if err != nil {
			return
		}
		if err := c.Write(r.Context(), typ, msg); err != nil {
			return
		}
	}
})

func dialWS(t *testing.T, r *rig) *websocket.Conn {
	t.Helper()
	c, res, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(r.url("/ws"), "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("upgrade status %d", res.StatusCode)
	}
	return c
}

func echo(t *testing.T, c *websocket.Conn, msg string) error {
	t.Helper()
	ctx := context.Background()
	if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
		return err
	}
	_, got, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if string(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

func TestWebSocketPassThrough(t *testing.T) {
	r := newRig(t, echoWS, func(o *Options) { o.ContainerConcurrency = 2 })
	c := dialWS(t, r)
	for i := range 3 {
		if err := echo(t, c, fmt.Sprint("hello ", i)); err != nil {
			t.Fatal(err)
		}
	}
	// A WebSocket is in flight for its whole life and holds a slot.
	if r.proxy.InFlight() != 1 || r.proxy.breaker.InFlight() != 1 {
		t.Fatalf("in flight %d, breaker %d; want 1 each", r.proxy.InFlight(), r.proxy.breaker.InFlight())
	}
	// Request timeouts no longer apply once upgraded.
	r.clock.Step(revisionDefaultTimeoutPlus())
	if err := echo(t, c, "still open"); err != nil {
		t.Fatal(err)
	}
	c.Close(websocket.StatusNormalClosure, "")
	require.Eventually(t, func() bool { return r.proxy.InFlight() == 0 }, waitTimeout, time.Millisecond)
}

func revisionDefaultTimeoutPlus() time.Duration { return 301 * time.Second }

// An h2c app gets HTTP/2 end to end (gRPC, with trailers); an HTTP/1 app
// gets HTTP/1.1 from an HTTP/2 client: Options.Protocol decides the
// upstream hop, not the client.
func TestH2CPassThrough(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = fmt.Fprintf(w, "proto %d", r.ProtoMajor)
		w.Header().Set("Grpc-Status", "0")
	})
	for _, c := range []struct{ protocol, want string }{{revision.ProtocolH2C, "proto 2"}, {"", "proto 1"}} {
		r := newRig(t, app, func(o *Options) { o.Protocol = c.protocol })
		var protos http.Protocols
		protos.SetUnencryptedHTTP2(true)
		client := &http.Client{Transport: &http.Transport{Protocols: &protos}}
		defer client.CloseIdleConnections()
		res, err := client.Post(r.url("/svc.Echo/Echo"), "application/grpc", strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.ProtoMajor != 2 || string(body) != c.want || res.Trailer.Get("Grpc-Status") != "0" {
			t.Fatalf("protocol %q: client proto %d, body %q, trailer %v; want HTTP/2 to the client, %q from the app, trailers",
				c.protocol, res.ProtoMajor, body, res.Trailer, c.want)
		}
	}
}

// Server-sent events reach the client as they are written, and the
// stream is in flight until it ends.
func TestStreamingFlushesImmediately(t *testing.T) {
	next := make(chan struct{})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			_, _ = fmt.Fprintf(w, "data: %d\n\n", i)
			w.(http.Flusher).Flush()
			<-next
		}
	})
	r := newRig(t, app, nil)
	res, err := r.client.Get(r.url("/events"))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	for i := range 3 {
		line, err := br.ReadString('\n')
		if err != nil || line != fmt.Sprintf("data: %d\n", i) {
			t.Fatalf("event %d: %q, %v", i, line, err)
		}
		_, _ = br.ReadString('\n')
		if r.proxy.InFlight() != 1 {
			t.Fatalf("stream not in flight: %d", r.proxy.InFlight())
		}
		next <- struct{}{}
	}
}

// Drain answers health 503 at once, still serves new requests, and
// waits for every in-flight request, a WebSocket included.
func TestDrainWaitsForInFlightAndWebSocket(t *testing.T) {
	g := newGate()
	mux := http.NewServeMux()
	mux.Handle("/ws", echoWS)
	mux.Handle("/slow", g)
	mux.HandleFunc("/fast", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "fast") })
	r := newRig(t, mux, noQuiet)

	slow := make(chan string)
	go func() { _, b, _ := r.get("/slow"); slow <- b }()
	<-g.arrived
	ws := dialWS(t, r)

	drained := make(chan error)
	go func() { drained <- r.proxy.Drain(context.Background()) }()
	require.Eventually(t, r.proxy.Draining, waitTimeout, time.Millisecond)
	if code, body, _ := r.get(HealthPath); code != 503 || trimmed(body) != "draining" {
		t.Fatalf("health while draining = %d %q", code, body)
	}
	if code, body, _ := r.get("/fast"); code != 200 || body != "fast" {
		t.Fatalf("new request while draining = %d %q", code, body)
	}
	close(g.release)
	if b := <-slow; b != "done" {
		t.Fatalf("in-flight request got %q", b)
	}
	if err := echo(t, ws, "alive"); err != nil {
		t.Fatalf("websocket cut by drain: %v", err)
	}
	select {
	case err := <-drained:
		t.Fatalf("Drain returned (%v) with a WebSocket open", err)
	default:
	}
	ws.Close(websocket.StatusNormalClosure, "")
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
}

func TestDrainClosesUpgradesAfterLimit(t *testing.T) {
	r := newRig(t, echoWS, func(o *Options) { noQuiet(o); o.UpgradeDrainLimit = 5 * time.Second })
	ws := dialWS(t, r)
	if err := echo(t, ws, "x"); err != nil {
		t.Fatal(err)
	}
	drained := make(chan error)
	go func() { drained <- r.proxy.Drain(context.Background()) }()
	require.Eventually(t, func() bool { return r.clock.HasWaiters() }, waitTimeout, time.Millisecond)
	r.clock.Step(5 * time.Second)
	if err := <-drained; err != nil {
		t.Fatal(err)
	}
	if err := echo(t, ws, "y"); err == nil {
		t.Fatal("WebSocket still open after the drain limit")
	}
}

func TestDrainHonoursContext(t *testing.T) {
	g := newGate()
	r := newRig(t, g, nil)
	done := make(chan struct{})
	go func() { defer close(done); r.get("/") }()
	<-g.arrived
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.proxy.Drain(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Drain = %v, want context.Canceled", err)
	}
	close(g.release)
	<-done
}

func TestTracing(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	seen := make(chan string, 1)
	app := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { seen <- r.Header.Get("Traceparent") })
	r := newRig(t, app, func(o *Options) {
		o.TracerProvider = tp
		o.Propagator = propagation.TraceContext{}
		o.ContainerConcurrency = 1
	})
	r.get("/traced", "Traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	tp2 := <-seen
	spans := rec.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	s := spans[0]
	if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !strings.Contains(tp2, s.SpanContext().SpanID().String()) {
		t.Errorf("span %v not parented by the incoming trace or not propagated (%q)", s.SpanContext(), tp2)
	}
	var wait bool
	for _, a := range s.Attributes() {
		wait = wait || a.Key == attrQueueWait
	}
	if !wait {
		t.Errorf("span lacks %s: %v", attrQueueWait, s.Attributes())
	}
}
