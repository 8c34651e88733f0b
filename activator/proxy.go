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
	"sync/atomic"
	"time"

	"github.com/zeroscale/zeroscale/internal/hop"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// attempt is one try to send a request to one instance; the proxy hooks
// find it in the request context.
type attempt struct {
	rev       *throttler
	slot      slot
	cold      bool
	coldStart *coldStart // its milestones until the first byte; nil unless held at zero
	wait      time.Duration
	mayRetry  bool // idempotent and first try
	body      *trackedBody
	deadline  *heldDeadline // nil unless the request was held
	gotConn   atomic.Bool
	ct        httptrace.ClientTrace // sets gotConn; in the attempt to save an allocation
	span      trace.Span            // nil without tracing
	retryErr  error                 // set instead of answering when the request may be retried
}

type attemptKey struct{}

func attemptOf(ctx context.Context) *attempt {
	a, _ := ctx.Value(attemptKey{}).(*attempt)
	return a
}

func (h *Handler) newProxy() *httputil.ReverseProxy {
	return &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		Transport:      roundTripper{},
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.proxyError,
		ErrorLog:       slog.NewLogLogger(h.log.Handler(), slog.LevelDebug),
		BufferPool:     hop.NewBufferPool(),
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
	if a.slot.local != nil {
		h.handOver(ctx, w, r, a)
		return
	}
	ctx = context.WithValue(ctx, attemptKey{}, a)
	if a.mayRetry {
		a.ct.GotConn = func(httptrace.GotConnInfo) { a.gotConn.Store(true) }
		ctx = httptrace.WithClientTrace(ctx, &a.ct)
	}
	h.proxy.ServeHTTP(w, r.WithContext(ctx))
}

// handOver gives r to the instance's in-process queue-proxy: one hop to
// the app instead of two. The queue-proxy does the edge's header work
// (hop.Local) on its copy; what the activator's proxy hooks do at the
// response start (disarm a held request's deadline, the cold-start
// header) is done by the recorder. There is no retry: the queue-proxy
// answers an unreachable app itself (502), as over the loopback hop.
func (h *Handler) handOver(ctx context.Context, w http.ResponseWriter, r *http.Request, a *attempt) {
	l := h.local
	if h.trusts(r.RemoteAddr) {
		l = h.localTrusted
	}
	if rec, ok := w.(*responseRecorder); ok && (a.cold || a.deadline != nil || a.coldStart != nil) {
		rec.started = a
	}
	a.slot.local.ServeHTTP(w, r.WithContext(hop.WithLocal(ctx, l)))
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
	// The edge: a trusted proxy's X-Forwarded-* are kept (the client
	// address appended), anyone else's replaced by this hop's (the
	// queue-proxy then appends the activator's address). Forwarded,
	// which Rewrite mode removed, is the queue-proxy's to build from
	// them.
	hop.SetXForwarded(pr.In, pr.Out.Header, h.trusts(pr.In.RemoteAddr))
	hop.DelInternal(pr.Out.Header)
	// Shared one-element values (canonical keys) save two allocations per
	// request; nothing downstream writes into a request's header values.
	if h.secretValue != nil {
		pr.Out.Header[hop.ActivatorHeader] = h.secretValue
	}
	pr.Out.Header[hop.RevisionHeader] = a.rev.revValue
	if h.tracer != nil {
		propagation.TraceContext{}.Inject(pr.Out.Context(), propagation.HeaderCarrier(pr.Out.Header))
	}
}

func (h *Handler) modifyResponse(res *http.Response) error {
	a := attemptOf(res.Request.Context())
	// The response started: from here the queue-proxy's timeouts
	// govern (an upgraded connection must not be cut by ours).
	a.deadline.stop()
	if a.span != nil {
		a.span.AddEvent("first_byte", trace.WithTimestamp(h.clock.Now()),
			trace.WithAttributes(attribute.Int("http.response.status_code", res.StatusCode)))
	}
	if a.cold {
		res.Header.Set(ColdStartHeader, a.wait.Round(time.Millisecond).String())
	}
	if a.coldStart != nil {
		h.recordColdStart(a.rev, a.coldStart, h.clock.Now())
		a.coldStart = nil
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
	if answerEnded(w, r.Context()) {
		return // a timeout (504), or the client left (499, nothing to answer)
	}
	if a.mayRetry && !a.gotConn.Load() && (a.body == nil || !a.body.read.Load()) {
		a.retryErr = err
		return
	}
	// The instance, its address and the error (which names it) are for
	// the log: no response body shows an internal address.
	h.log.Warn("activator: proxy error", "revision", a.rev.name, "instance", a.slot.id, "address", a.slot.addr, "error", err)
	http.Error(w, fmt.Sprintf("activator: revision %q: upstream unavailable", a.rev.name), http.StatusBadGateway)
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
	// started, when set, is a held request handed over in process: its
	// response start does what modifyResponse does over a hop.
	started *attempt
}

// start runs once, as the response starts.
func (w *responseRecorder) start(code int) {
	w.code = code
	if a := w.started; a != nil {
		a.deadline.stop()
		if a.cold {
			w.Header().Set(ColdStartHeader, a.wait.Round(time.Millisecond).String())
		}
		if a.coldStart != nil {
			a.rev.h.recordColdStart(a.rev, a.coldStart, a.rev.h.clock.Now())
			a.coldStart = nil
		}
	}
}

func (w *responseRecorder) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.start(code)
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseRecorder) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.start(http.StatusOK)
	}
	return w.ResponseWriter.Write(p)
}

func (w *responseRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush makes http.Flusher assertions work.
func (w *responseRecorder) Flush() {
	if w.code == 0 {
		w.start(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Hijack passes an upgrade's hijack through and records 101.
func (w *responseRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if w.code == 0 && w.started != nil {
		w.started.deadline.stop() // an upgrade is not cut by our bound
	}
	c, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil && w.code == 0 {
		w.code = http.StatusSwitchingProtocols
	}
	return c, rw, err
}
