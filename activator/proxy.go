package activator

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/zeroscale/zeroscale/queueproxy"
)

// internalHeaders are only ever set by the activator; a client's copies
// are removed so that it cannot spoof proxied accounting, routing or
// probes at the queue-proxy.
var internalHeaders = []string{
	queueproxy.ActivatorHeader,
	queueproxy.OriginalHostHeader,
	queueproxy.RevisionHeader,
	queueproxy.ProbeHeader,
}

// attempt is one try to send a request to one instance; the proxy hooks
// find it in the request context.
type attempt struct {
	rev      *throttler
	slot     slot
	cold     bool
	wait     time.Duration
	mayRetry bool // idempotent and first try
	body     *trackedBody
	gotConn  atomic.Bool
	ct       httptrace.ClientTrace // sets gotConn; in the attempt to save an allocation
	span     trace.Span            // nil without tracing
	retryErr error                 // set instead of answering when the request may be retried
}

type attemptKey struct{}

func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

// newTransport is the default transport of a revision whose instances
// take cc requests each.
func newTransport(cc int) *instanceTransport {
	idle := cc
	if idle == 0 {
		idle = DefaultIdleConnsPerInstance
	}
	newT := func() *http.Transport {
		return &http.Transport{
			DialContext:           (&net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   idle,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Pass the client's encodings through untouched.
			DisableCompression: true,
		}
	}
	h2c := newT()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return &instanceTransport{h1: newT(), h2c: h2c}
}

// instanceTransport keeps a request's HTTP major version on the hop to
// the instance: HTTP/2 requests (gRPC needs HTTP/2 end to end) go over
// h2c, the rest over HTTP/1.1, which upgrades (WebSocket) need.
type instanceTransport struct {
	h1, h2c *http.Transport
}

func (t *instanceTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return t.h2c.RoundTrip(r)
	}
	return t.h1.RoundTrip(r)
}

// CloseIdleConnections closes both transports' idle connections.
func (t *instanceTransport) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}

func (h *Handler) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      roundTripper{},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.proxyError,
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		BufferPool:     &bufferPool{},
		// FlushInterval 0: ReverseProxy flushes every write of streamed
		// responses (unknown length, text/event-stream) and buffers the
		// rest. Upgrades (WebSocket) are passed through by ReverseProxy.
	}
}

// forward proxies r to a.slot and releases the slot. The slot is
// released only once ReverseProxy returned: the response body was copied
// to its end and closed, or an upgraded connection closed. That is what
// WaitInstanceIdle promises, so it must never be released earlier.
func (h *Handler) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, a *attempt) {
	defer a.rev.release(a.slot) // also when ReverseProxy aborts with a panic
	if h.tracer != nil {
		ctx, a.span = h.tracer.Start(ctx, "zeroscale.activator.upstream",
			trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(h.clock.Now()),
			trace.WithAttributes(attribute.String("zeroscale.revision", a.rev.name),
				attribute.String("zeroscale.instance", a.slot.id), attribute.String("server.address", a.slot.addr)))
		defer func() { a.span.End(trace.WithTimestamp(h.clock.Now())) }()
	}
	ctx = context.WithValue(ctx, attemptKey{}, a)
	if a.mayRetry {
		a.ct.GotConn = func(httptrace.GotConnInfo) { a.gotConn.Store(true) }
		ctx = httptrace.WithClientTrace(ctx, &a.ct)
	}
	h.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// roundTripper sends through the attempt's revision transport.
type roundTripper struct{}

func (roundTripper) RoundTrip(r *http.Request) (*http.Response, error) {
	return attemptOf(r.Context()).rev.transport.RoundTrip(r)
}

func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	a := attemptOf(pr.In.Context())
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = a.slot.addr
	// The client's Host is kept, so OriginalHostHeader is never needed.
	pr.Out.Host = pr.In.Host
	// Like ReverseProxy's Director mode: append the client address to
	// X-Forwarded-For, keep X-Forwarded-Host/Proto a proxy in front set.
	in := pr.In.Header
	if v := in["X-Forwarded-For"]; len(v) > 0 {
		pr.Out.Header["X-Forwarded-For"] = v
	}
	pr.SetXForwarded()
	for _, k := range []string{"X-Forwarded-Host", "X-Forwarded-Proto"} {
		if v := in[k]; len(v) > 0 {
			pr.Out.Header[k] = v
		}
	}
	for _, k := range internalHeaders {
		pr.Out.Header.Del(k)
	}
	// Shared one-element values (canonical keys) save two allocations per
	// request; nothing downstream writes into a request's header values.
	if h.secretValue != nil {
		pr.Out.Header[queueproxy.ActivatorHeader] = h.secretValue
	}
	pr.Out.Header[queueproxy.RevisionHeader] = a.rev.revValue
	if h.tracer != nil {
		propagation.TraceContext{}.Inject(pr.Out.Context(), propagation.HeaderCarrier(pr.Out.Header))
	}
}

func (h *Handler) modifyResponse(res *http.Response) error {
	a := attemptOf(res.Request.Context())
	if a.span != nil {
		a.span.AddEvent("first_byte", trace.WithTimestamp(h.clock.Now()),
			trace.WithAttributes(attribute.Int("http.response.status_code", res.StatusCode)))
	}
	if a.cold {
		res.Header.Set(ColdStartHeader, a.wait.Round(time.Millisecond).String())
	}
	return nil
}

// proxyError answers a failed proxy attempt with 502, or records it for
// a retry when nothing of the request left and it is idempotent.
func (h *Handler) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	a := attemptOf(r.Context())
	if a.span != nil {
		a.span.RecordError(err)
		a.span.SetStatus(codes.Error, "proxy error")
	}
	if r.Context().Err() != nil {
		return // the client left: 499, nothing to answer
	}
	if a.mayRetry && !a.gotConn.Load() && (a.body == nil || !a.body.read.Load()) {
		a.retryErr = err
		return
	}
	h.log.Warn("activator: proxy error", "revision", a.rev.name, "instance", a.slot.id, "address", a.slot.addr, "error", err)
	http.Error(w, fmt.Sprintf("activator: revision %q: instance %s (%s): %v", a.rev.name, a.slot.id, a.slot.addr, err),
		http.StatusBadGateway)
}

// traceHold records a held request's phases as a span: queued, then the
// demand report (scale requested), then the slot (instance ready).
func (h *Handler) traceHold(ctx context.Context, adm admission, assigned time.Time, err error) {
	_, s := h.tracer.Start(ctx, "zeroscale.activator.queued", trace.WithTimestamp(adm.since),
		trace.WithAttributes(attribute.Bool("zeroscale.cold_start", adm.cold)))
	s.AddEvent("scale_requested", trace.WithTimestamp(adm.since),
		trace.WithAttributes(attribute.Bool("zeroscale.triggered_by_this_request", adm.triggered)))
	if err != nil {
		s.RecordError(err, trace.WithTimestamp(assigned))
		s.SetStatus(codes.Error, err.Error())
	} else {
		s.AddEvent("instance_ready", trace.WithTimestamp(assigned),
			trace.WithAttributes(attribute.String("zeroscale.instance", adm.slot.id)))
	}
	s.End(trace.WithTimestamp(assigned))
}

// trackedBody keeps a request body open across a failed attempt and
// records whether any of it was read.
type trackedBody struct {
	rc   io.ReadCloser
	read atomic.Bool
}

func (b *trackedBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.rc.Read(p)
}

// Close does nothing: the server closes the real body after the handler.
func (b *trackedBody) Close() error { return nil }

// responseRecorder remembers the status code for metrics. It unwraps for
// http.ResponseController (flushes) and hijacks for upgrades.
type responseRecorder struct {
	http.ResponseWriter
	code int
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush makes http.Flusher assertions work.
func (w *responseRecorder) Flush() {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack passes an upgrade's hijack through and records 101.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}

// bufferPool reuses ReverseProxy's copy buffers; pooling array pointers
// keeps Put allocation-free (a *[]byte would cost an allocation per Put).
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte {
	if v, ok := b.p.Get().(*[copyBufferSize]byte); ok {
		return v[:]
	}
	return make([]byte, copyBufferSize)
}

func (b *bufferPool) Put(buf []byte) {
	if len(buf) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(buf))
	}
}
