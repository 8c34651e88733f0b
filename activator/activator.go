package activator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// Bounds and defaults.
const (
	// DefaultMaxHeldRequests bounds each revision's hold queue.
	DefaultMaxHeldRequests = 1000
	// DefaultMaxHeldBytes bounds the bytes each revision's held requests
	// represent (headers plus declared body length).
	DefaultMaxHeldBytes = 32 << 20
	// MinWait and StartupWaitFactor make the default wait deadline,
	// Cloud Run's rule: max(StartupWaitFactor × average start-up, MinWait).
	MinWait           = 10 * time.Second
	StartupWaitFactor = 3.5
	// reportInterval is the period of the activator's demand reports.
	reportInterval = time.Second
	// DefaultName is the Stat.Instance of the activator's reports.
	DefaultName = "activator"
	// defaultIdleConnsPerInstance is the keep-alive pool per instance
	// when the container concurrency is 0 (unlimited); otherwise the pool
	// holds container-concurrency connections, all an instance can use.
	defaultIdleConnsPerInstance = 100
	// ColdStartHeader is set on responses to requests that waited for a
	// revision to come up from zero; its value is the wait (e.g. "2.5s").
	ColdStartHeader = "Zeroscale-Cold-Start"
)

// Errors of held requests, checkable with errors.Is; the error a Reject
// function receives wraps one of them (or the client's context error).
var (
	// ErrQueueFull: the revision's hold queue is at its request or byte
	// bound.
	ErrQueueFull = errors.New("hold queue full")
	// ErrWaitTimeout: no slot freed before the wait deadline, which was
	// shorter than the revision's request timeout: a capacity answer
	// (503 with Retry-After).
	ErrWaitTimeout = errors.New("wait deadline passed")
	// ErrRequestTimeout: the revision's request timeout passed while the
	// request was held or before its response started (504, Knative's
	// timeout handler).
	ErrRequestTimeout = hop.ErrRequestTimeout
	// ErrRevisionRemoved: the revision was removed (RemoveRevision).
	ErrRevisionRemoved = errors.New("revision removed")
	// ErrRevisionFailing: the revision has no serving instance and its
	// engine says it cannot start one (SetFailing): requests fail fast
	// (503 with Retry-After) instead of waiting out the hold deadline.
	ErrRevisionFailing = errors.New("revision failing")
	// ErrUnknownRevision: the revision was never set (SetRevision) or
	// was removed.
	ErrUnknownRevision = errors.New("unknown revision")
)

// RevisionPicker chooses the revision that serves a request.
// traffic.Route implements it. An error means no revision serves the
// request; the activator answers 404 with the error as the body.
type RevisionPicker interface {
	PickRevision(r *http.Request) (revision string, err error)
}

// RejectFunc answers a request the activator could not send to an
// instance (hold queue full, wait deadline, the revision's request
// timeout or a deadline the host set passed while held, revision
// removed); err says which (errors.Is with ErrQueueFull, ErrWaitTimeout,
// ErrRequestTimeout, context.DeadlineExceeded, ErrRevisionRemoved). It replaces the default 503 response, e.g. with a placeholder
// page or a fallback handler.
type RejectFunc func(w http.ResponseWriter, r *http.Request, err error)

// Options configure a Handler. Only Picker is required.
type Options struct {
	// Picker resolves each request's revision. Required.
	Picker RevisionPicker
	// Secret is the shared secret sent in an internal header (the
	// queue-proxy's Options.ActivatorSecret) so that queue-proxies trust the request as activator-proxied. Empty
	// means requests are not marked. A client-supplied header is always
	// removed.
	Secret string
	// TrustedProxies are the client addresses whose X-Forwarded-For,
	// X-Forwarded-Proto, X-Forwarded-Host and Forwarded headers are
	// passed on to the app (a load balancer in front). Everyone else's
	// are replaced by this hop's, so a client cannot make the app
	// believe it came over https, from another address or for another
	// host. nil trusts no one.
	TrustedProxies []netip.Prefix
	// Name is the Stat.Instance of this activator's reports; "" means
	// DefaultName.
	Name string
	// Reporter receives the activator's per-revision demand; nil means
	// none (Run then returns at once).
	Reporter stats.Reporter
	// Policy returns a new load-balancing policy for a revision with the
	// given container concurrency; nil (or a nil result) means
	// DefaultPolicy.
	Policy func(containerConcurrency int) Policy
	// MaxHeldRequests bounds each revision's hold queue; 0 means
	// DefaultMaxHeldRequests.
	MaxHeldRequests int
	// MaxHeldBytes bounds the bytes each revision's held requests
	// represent: their header bytes plus declared Content-Length. While
	// an HTTP/1 request is held, a body of declared length up to this
	// bound is read into memory (so that the server notices the client
	// leaving, see Handler); a body of unknown length (chunked), a larger
	// one, or one sent only after Expect: 100-continue stays in the client
	// connection until the request is released. Either way this bounds the
	// memory of held requests and the burst a queue releases at once. A
	// request that alone exceeds it is still held when the queue is
	// empty. 0 means DefaultMaxHeldBytes.
	MaxHeldBytes int64
	// WaitTimeout, when positive, is how long a request may be held,
	// instead of max(3.5 × observed average start-up, 10 s). Either is
	// capped by the revision's request timeout.
	WaitTimeout time.Duration
	// ProbePeriod is how often the activator probes an instance the
	// backend does not report ready (a new one, or one that turned not
	// ready), as Knative's activator does, so that requests flow the
	// moment its queue-proxy answers ready rather than when the
	// engine's readiness catches up; it stops once the backend reports
	// the instance ready or draining. 0 means DefaultProbePeriod (200
	// ms); negative turns probing off. At most one minute.
	ProbePeriod time.Duration
	// ProbeTimeout bounds each probe; 0 means DefaultProbeTimeout (300
	// ms). At most one minute.
	ProbeTimeout time.Duration
	// Reject answers refused requests; nil means 503 with Retry-After
	// (the average start-up time, at least 1 s) and a plain-text reason.
	Reject RejectFunc
	// Transport sends requests to instances; nil means a transport per
	// revision that speaks the revision's Spec.Protocol whatever the
	// client speaks: h2c (HTTP/2 without TLS, prior knowledge, e.g.
	// gRPC) for "h2c", else HTTP/1.1, upgrades included, with
	// keep-alive, an idle pool sized to the container concurrency, a 5 s
	// connect timeout, and no transparent compression. Instances with a
	// backend.Instance.Handler (an in-process queue-proxy) are handed
	// their requests directly and never use it.
	Transport http.RoundTripper
	// Clock times waits and reports; nil means the real clock.
	Clock clock.WithTicker
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the zeroscale_activator_ metrics; nil means
	// they are not registered.
	Registerer prometheus.Registerer
	// TracerProvider makes the per-request spans; nil means no tracing
	// (W3C trace context is still passed through).
	TracerProvider trace.TracerProvider
}

// Handler is the activator: an http.Handler that routes each request to
// a revision, holds it while the revision has no free slot, and proxies
// it to one of the revision's ready instances. Create it with New; tell
// it about revisions (SetRevision, RemoveRevision) and their instances
// (UpdateInstances); call Run to report demand. Safe for concurrent use.
//
// Answers of its own: 404 when the Picker finds no revision or the
// revision is unknown; 504 when the revision's request timeout passed
// while the request was held or, for a request that was held, before the
// response started (Knative's timeout handler; the time held counts);
// 503 with Retry-After and a plain-text reason for capacity: the hold
// queue is full, the wait deadline (shorter than the request timeout)
// passed, a deadline the host set on the request passed while it was
// held, or the revision was removed (or whatever Options.Reject writes);
// 502 when the instance could not be reached (after the one retry
// idempotent requests get). A client that leaves while held is counted
// with code 499 and gets nothing.
//
// A client that leaves frees its place in the hold queue as soon as the
// server cancels the request's context: at once over HTTP/2, and over
// HTTP/1 once the server watches the connection, which it does only
// after the handler read the body to its end. So a held HTTP/1 request's
// body of declared length within MaxHeldBytes is read into memory while
// held; a held request whose body is not (chunked, larger than
// MaxHeldBytes, or awaiting Expect: 100-continue) keeps its place until
// it is released (the proxy then finds the client gone: 499) or the wait
// deadline passes (a 503 written to no one).
//
// Forwarding: the client's Host is kept (so hop.OriginalHostHeader
// is never set); X-Forwarded-For gets the client address appended;
// client copies of the internal queueproxy headers are removed, then
// ActivatorHeader (the shared secret, when set) and RevisionHeader are
// set; W3C traceparent/tracestate are continued from the activator's
// span, or passed through untouched without a TracerProvider. Streamed
// responses are flushed as they come and upgrades (WebSocket) pass
// through, holding their slot for the connection's life. Request
// timeouts after the hand-off are the queue-proxy's; the activator
// bounds the wait, connecting (5 s) and, for a request it
// held, the rest of the request timeout until the response starts.
type Handler struct {
	picker       RevisionPicker
	secretValue  []string // {Options.Secret} for ActivatorHeader, nil if unset
	trusted      []netip.Prefix
	name         string
	reporter     stats.Reporter
	policy       func(int) Policy
	maxHeld      int
	maxHeldBytes int64
	waitTimeout  time.Duration
	probePeriod  time.Duration // < 0: no probing
	probeTimeout time.Duration
	rejectFn     RejectFunc
	transport    http.RoundTripper
	clock        clock.WithTicker
	log          *slog.Logger
	metrics      *metrics
	tracer       trace.Tracer // nil: no tracing, trace headers pass through as they are
	proxy        *httputil.ReverseProxy
	// local marks the requests handed to in-process queue-proxies
	// (backend.Instance.Handler): for clients trusted or not.
	local, localTrusted *hop.Local

	mu   sync.RWMutex
	revs map[string]*throttler
}

// New returns a Handler configured by o.
func New(o Options) (*Handler, error) {
	var errs []error
	if o.Picker == nil {
		errs = append(errs, errors.New("Options.Picker is nil; a RevisionPicker (e.g. a traffic.Route) is required"))
	}
	if o.MaxHeldRequests < 0 {
		errs = append(errs, fmt.Errorf("Options.MaxHeldRequests %d: must be ≥ 0 (0 = %d)", o.MaxHeldRequests, DefaultMaxHeldRequests))
	}
	if o.MaxHeldBytes < 0 {
		errs = append(errs, fmt.Errorf("Options.MaxHeldBytes %d: must be ≥ 0 (0 = %d)", o.MaxHeldBytes, DefaultMaxHeldBytes))
	}
	for i, p := range o.TrustedProxies {
		if !p.IsValid() {
			errs = append(errs, fmt.Errorf("Options.TrustedProxies[%d] %v: not a valid address prefix (e.g. 10.0.0.0/8)", i, p))
		}
	}
	if o.WaitTimeout < 0 || o.WaitTimeout > revision.MaxRequestTimeout {
		errs = append(errs, fmt.Errorf("Options.WaitTimeout %s: must be in [0, %s] (0 = max(%.1f × average start-up, %s))",
			o.WaitTimeout, revision.MaxRequestTimeout, StartupWaitFactor, MinWait))
	}
	if o.ProbePeriod > time.Minute {
		errs = append(errs, fmt.Errorf("Options.ProbePeriod %s: must be at most 1m (0 = %s, negative = off)", o.ProbePeriod, DefaultProbePeriod))
	}
	if o.ProbeTimeout < 0 || o.ProbeTimeout > time.Minute {
		errs = append(errs, fmt.Errorf("Options.ProbeTimeout %s: must be in [0, 1m] (0 = %s)", o.ProbeTimeout, DefaultProbeTimeout))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("activator: %w", errors.Join(errs...))
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	h := &Handler{
		trusted:      o.TrustedProxies,
		picker:       o.Picker,
		name:         cmp.Or(o.Name, DefaultName),
		reporter:     o.Reporter,
		policy:       o.Policy,
		maxHeld:      cmp.Or(o.MaxHeldRequests, DefaultMaxHeldRequests),
		maxHeldBytes: cmp.Or(o.MaxHeldBytes, DefaultMaxHeldBytes),
		waitTimeout:  o.WaitTimeout,
		probePeriod:  cmp.Or(o.ProbePeriod, DefaultProbePeriod),
		probeTimeout: cmp.Or(o.ProbeTimeout, DefaultProbeTimeout),
		rejectFn:     o.Reject,
		transport:    o.Transport,
		clock:        o.Clock,
		log:          o.Logger,
		metrics:      m,
		revs:         make(map[string]*throttler),
	}
	if o.Secret != "" {
		h.secretValue = headerValue(o.Secret)
	}
	if h.policy == nil {
		h.policy = DefaultPolicy
	}
	if h.clock == nil {
		h.clock = clock.RealClock{}
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if o.TracerProvider != nil {
		h.tracer = o.TracerProvider.Tracer("github.com/zeroscale/zeroscale/activator")
	}
	h.proxy = h.newProxy()
	h.local = &hop.Local{Propagate: h.tracer != nil}
	h.localTrusted = &hop.Local{TrustForwarded: true, Propagate: h.tracer != nil}
	return h, nil
}

// headerValue is a header value shared by every request: its capacity
// of one makes an append by anyone copy it rather than write into it.
func headerValue(v string) []string { return []string{v}[:1:1] }

// SetRevision makes rev routable, or updates its settings: its container
// concurrency (per-instance slots; 0 = unlimited) and request timeout
// (caps the wait deadline). Call it before UpdateInstances.
func (h *Handler) SetRevision(rev revision.Revision) error {
	name := rev.Name()
	if name == "" {
		return errors.New("activator: SetRevision: the revision has no name (build it with revision.New)")
	}
	// revision.New validated the spec and filled in its defaults: the
	// container concurrency and the request timeout are in range.
	spec := rev.Spec()
	cc, timeout := spec.ContainerConcurrency, spec.Timeouts.Request
	h.mu.Lock()
	t := h.revs[name]
	if t == nil {
		t = &throttler{name: name, revValue: headerValue(name), h: h, m: h.metrics.forRevision(name), transport: h.transport}
		if t.transport == nil {
			idle := cc
			if idle == 0 {
				idle = defaultIdleConnsPerInstance
			}
			t.transport = hop.NewTransport(idle, spec.Protocol == revision.ProtocolH2C)
		}
		h.revs[name] = t
	}
	h.mu.Unlock()
	t.setConcurrency(cc, timeout, h.policy)
	return nil
}

// RemoveRevision forgets a revision: its held requests are rejected with
// ErrRevisionRemoved, new ones get 404, requests in flight finish.
// Removing an unknown revision does nothing.
func (h *Handler) RemoveRevision(name string) {
	h.mu.Lock()
	t := h.revs[name]
	delete(h.revs, name)
	if t != nil {
		h.metrics.forget(name)
	}
	h.mu.Unlock()
	if t == nil {
		return
	}
	t.remove()
	if c, ok := t.transport.(interface{ CloseIdleConnections() }); ok && h.transport == nil {
		c.CloseIdleConnections()
	}
}

// UpdateInstances replaces a revision's instances with a snapshot from
// backend.Watch. Only serving instances (Instance.Serving) get new requests;
// requests in flight on others finish. Held requests are released at
// once onto new free slots, never more than the container concurrency
// per instance. Instances that became ready while watched feed the
// average start-up time behind the default wait deadline.
func (h *Handler) UpdateInstances(revision string, insts []backend.Instance) error {
	t := h.lookup(revision)
	if t == nil {
		return fmt.Errorf("activator: UpdateInstances %q: %w; call SetRevision first", revision, ErrUnknownRevision)
	}
	t.update(insts)
	return nil
}

// SetFailing records why the revision cannot start an instance (a crash
// loop its engine reports), or clears it with nil. While it is set and no
// instance of the revision serves, held requests are answered at once
// with an error wrapping ErrRevisionFailing and reason, and new ones
// likewise instead of being held; their demand still reaches the
// autoscaler. An instance that serves takes requests as usual. Unknown
// revisions are ignored.
func (h *Handler) SetFailing(revision string, reason error) {
	if t := h.lookup(revision); t != nil {
		t.setFailing(reason)
	}
}

// Load reports a revision's held and in-flight requests and free slots;
// false if the revision is unknown.
func (h *Handler) Load(revision string) (Load, bool) {
	t := h.lookup(revision)
	if t == nil {
		return Load{}, false
	}
	return t.load(), true
}

// WaitInstanceIdle returns nil once the activator is done with instance
// instanceID of revision: the last snapshot it applied (UpdateInstances)
// shows the instance draining, not ready or absent, or the revision was
// removed, so no new request will be sent to it; and every request it
// already sent there has finished (the response body copied to its end,
// an upgraded connection such as a WebSocket closed). A host calls it
// from its backend.DrainFunc, after publishing the instance as Draining,
// so that the queue-proxy's own drain cannot see zero requests while one
// is still on its way from the activator. No settle delay is needed:
// requests get their slots under the same lock that applies snapshots.
//
// It returns nil at once when the revision is unknown (never set, or
// already removed) or the instance is not one the activator may send to
// and holds no slot on (e.g. it was never seen): nothing of the
// activator can reach it. It returns ctx.Err() if ctx ends first. A
// waiter costs one map entry per instance, removed when it is signalled
// or its last waiter's ctx ends.
func (h *Handler) WaitInstanceIdle(ctx context.Context, revision, instanceID string) error {
	t := h.lookup(revision)
	if t == nil {
		return nil
	}
	return t.waitIdle(ctx, instanceID)
}

// count increments c's series for the revision t serves and label. The
// revision label is "" for a request no known revision served, or whose
// revision was removed meanwhile: series are created only for revisions
// the Handler knows, and RemoveRevision deletes them (under h.mu, so
// that none is created again), which bounds them by the live revisions
// whatever names the Picker returns.
func (h *Handler) count(c *prometheus.CounterVec, t *throttler, label string) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	c.WithLabelValues(h.revLabel(t), label).Inc()
}

// observe counts a finished request and its latency, labelled as count
// does.
func (h *Handler) observe(t *throttler, code int, d time.Duration) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	rev := h.revLabel(t)
	if code == http.StatusOK && rev != "" {
		// The common answer: its series are looked up once per
		// revision (h.mu keeps RemoveRevision from deleting them
		// meanwhile), not hashed by label on every request.
		ok := t.ok.Load()
		if ok == nil {
			ok = &okSeries{h.metrics.requests.WithLabelValues(rev, "200"), h.metrics.latency.WithLabelValues(rev, "200")}
			t.ok.Store(ok)
		}
		ok.requests.Inc()
		ok.latency.Observe(d.Seconds())
		return
	}
	c := strconv.Itoa(code)
	h.metrics.requests.WithLabelValues(rev, c).Inc()
	h.metrics.latency.WithLabelValues(rev, c).Observe(d.Seconds())
}

// okSeries are a revision's series of 200 answers.
type okSeries struct {
	requests prometheus.Counter
	latency  prometheus.Observer
}

// revLabel is t's revision label: "" unless t is still the Handler's
// throttler for it. h.mu must be held.
func (h *Handler) revLabel(t *throttler) string {
	if t != nil && h.revs[t.name] == t {
		return t.name
	}
	return ""
}

func (h *Handler) lookup(name string) *throttler {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.revs[name]
}

// Run reports each active revision's demand (held + in-flight requests,
// time-weighted, and the request rate) to the Reporter every
// second until ctx is done. A revision's entry is dropped after a
// period with no demand, so its next request is reported at once again.
// Without a Reporter it returns immediately.
func (h *Handler) Run(ctx context.Context) {
	if h.reporter == nil {
		return
	}
	tick := h.clock.NewTicker(reportInterval)
	defer tick.Stop()
	last := h.clock.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C():
			h.report(now, now.Sub(last))
			last = now
		}
	}
}

// report sends every active revision's stat for the period ending at now.
func (h *Handler) report(now time.Time, interval time.Duration) {
	h.mu.RLock()
	ts := make([]*throttler, 0, len(h.revs))
	for _, t := range h.revs {
		ts = append(ts, t)
	}
	h.mu.RUnlock()
	for _, t := range ts {
		if s, ok := t.periodStat(now, interval); ok {
			h.reporter.Report(t.name, s)
		}
	}
}

// send delivers an immediate report, if any.
func (h *Handler) send(revision string, s *stats.Stat) {
	if s != nil && h.reporter != nil {
		h.reporter.Report(revision, *s)
	}
}

// ServeHTTP routes, holds if needed, and proxies r. A request whose
// hop.ProbeHeader is "activator" is answered 200 "activator" at once
// (Knative's activator probe; see CheckInPath).
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if v := r.Header[hop.ProbeHeader]; len(v) == 1 && v[0] == hop.ActivatorProbeValue {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, hop.ActivatorProbeValue)
		return
	}
	ctx := r.Context()
	start := h.clock.Now()
	var span trace.Span
	if h.tracer != nil {
		ctx = propagation.TraceContext{}.Extract(ctx, propagation.HeaderCarrier(r.Header))
		ctx, span = h.tracer.Start(ctx, "zeroscale.activator.request",
			trace.WithSpanKind(trace.SpanKindServer), trace.WithTimestamp(start))
	}
	rec := &responseRecorder{ResponseWriter: w}
	name := ""
	var t *throttler
	defer func() {
		code := rec.code
		if code == 0 {
			code = 499 // the client left before anything was written
		}
		end := h.clock.Now()
		h.observe(t, code, end.Sub(start))
		if span != nil {
			span.SetAttributes(attribute.String("zeroscale.revision", name), attribute.Int("http.response.status_code", code))
			span.End(trace.WithTimestamp(end))
		}
	}()

	name, err := h.picker.PickRevision(r)
	if err != nil {
		http.Error(rec, "activator: no revision serves this request: "+err.Error(), http.StatusNotFound)
		return
	}
	t = h.lookup(name)
	if t == nil {
		http.Error(rec, fmt.Sprintf("activator: revision %q: %v", name, ErrUnknownRevision), http.StatusNotFound)
		return
	}
	h.serve(ctx, rec, r, t)
}

// serve runs the throttled part of a request: acquire, proxy, maybe one
// retry. ctx is r's context with the request span.
func (h *Handler) serve(ctx context.Context, w *responseRecorder, r *http.Request, t *throttler) {
	bytes := heldBytes(r)
	req := acquireReq{bytes: bytes, arrival: true}
	var pf *heldBody
	if prefetchable(r, h.maxHeldBytes) {
		// Only here: a closure over serve's own variables would move them
		// to the heap on every request.
		pf = &heldBody{src: r.Body, size: r.ContentLength}
		req.onHold = pf.start
	}
	adm, err := t.acquire(ctx, req)
	if pf != nil && pf.body != nil {
		defer pf.body.finish(w)
		r = r.WithContext(ctx) // a shallow copy: the server's request keeps its body
		r.Body = pf.body
	}
	var waited time.Duration // only a held request waited; the rest skip the clock read
	var cold *coldStart
	if adm.held {
		assigned := h.clock.Now()
		waited = assigned.Sub(adm.since)
		if h.tracer != nil {
			h.traceHold(ctx, adm, assigned, err)
		}
		if adm.cold && err == nil {
			spanCtx := ctx
			if h.tracer == nil {
				spanCtx = nil
			}
			cold = t.newColdStart(spanCtx, adm, assigned)
		}
	}
	if err != nil {
		h.refuse(w, r, t, err)
		return
	}
	if adm.held {
		t.m.queueWait.Observe(waited.Seconds())
		if adm.cold {
			t.m.coldStartWait.Observe(waited.Seconds())
		}
	}
	var deadline *heldDeadline
	if adm.held {
		// The revision's request timeout counts from arrival, hold
		// included; the queue-proxy's counts from its own arrival, so
		// the activator bounds the rest until the response starts.
		ctx, deadline = h.boundHeld(ctx, t, waited)
		defer deadline.stop()
	}
	a := &attempt{rev: t, slot: adm.slot, cold: adm.cold, coldStart: cold, wait: waited, mayRetry: idempotent(r.Method), deadline: deadline}
	var body *trackedBody
	if a.mayRetry && r.Body != nil && r.Body != http.NoBody {
		// Transports close the body on error; keep it open and watch it
		// so that a request none of whose bytes left can be sent again.
		body = &trackedBody{rc: r.Body}
		r = r.WithContext(ctx) // a shallow copy: ReverseProxy clones it again and writes to neither
		r.Body = body
		a.body = body
	}
	h.forward(ctx, w, r, a)
	if a.retryErr == nil {
		return
	}
	t.m.retries.Inc()
	failed := a.slot
	h.log.Info("activator: retrying on another instance", "revision", t.name,
		"instance", failed.id, "address", failed.addr, "error", a.retryErr)
	adm2, err := t.acquire(ctx, acquireReq{bytes: bytes, exclude: failed.id, front: true})
	if err != nil {
		if !answerEnded(w, ctx) {
			// The instance and its address stay in the log: internal.
			h.log.Warn("activator: no other instance to retry on", "revision", t.name, "instance", failed.id, "error", err)
			http.Error(w, fmt.Sprintf("activator: revision %q: upstream unavailable, and no other instance: %v",
				t.name, err), http.StatusBadGateway)
		}
		return
	}
	a2 := &attempt{rev: t, slot: adm2.slot, cold: a.cold, coldStart: a.coldStart, wait: a.wait, body: body, deadline: deadline}
	h.forward(ctx, w, r, a2)
}

// heldDeadline ends a held request's context with ErrRequestTimeout
// when the rest of its request timeout passes before its response
// starts; stop disarms it (the response started, or the request ended).
type heldDeadline struct {
	done chan struct{}
	once sync.Once
}

func (d *heldDeadline) stop() {
	if d != nil {
		d.once.Do(func() { close(d.done) })
	}
}

// boundHeld returns ctx ending with ErrRequestTimeout once t's request
// timeout, less the time waited, has passed. Only held requests pay for
// the timer and its goroutine.
func (h *Handler) boundHeld(ctx context.Context, t *throttler, waited time.Duration) (context.Context, *heldDeadline) {
	t.mu.Lock()
	left := t.requestTimeout - waited
	t.mu.Unlock()
	ctx, cancel := context.WithCancelCause(ctx)
	d := &heldDeadline{done: make(chan struct{})}
	timer := h.clock.NewTimer(max(left, 0))
	cause := fmt.Errorf("revision %q: %w before the response started", t.name, ErrRequestTimeout)
	go func() {
		defer timer.Stop()
		select {
		case <-timer.C():
			cancel(cause)
		case <-d.done:
		}
	}()
	return ctx, d
}

// answerEnded answers a request whose context ended before its response
// started: 504 when the revision's request timeout or a deadline the
// host set passed, nothing when the client left. It reports whether ctx
// ended.
func answerEnded(w http.ResponseWriter, ctx context.Context) bool {
	if ctx.Err() == nil {
		return false
	}
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, ErrRequestTimeout):
		http.Error(w, "activator: "+cause.Error(), http.StatusGatewayTimeout)
	case errors.Is(cause, context.DeadlineExceeded):
		http.Error(w, "activator: deadline exceeded before the response started", http.StatusGatewayTimeout)
	}
	return true
}

// refuse answers a request that got no slot: 504 when the revision's
// request timeout passed, 503 with Retry-After for capacity (queue full,
// the shorter hold deadline, a deadline the host set, the revision
// removed), nothing when the client left.
func (h *Handler) refuse(w *responseRecorder, r *http.Request, t *throttler, err error) {
	reason := ""
	switch {
	case errors.Is(err, ErrQueueFull):
		reason = "queue_full"
	case errors.Is(err, ErrWaitTimeout):
		reason = "wait_timeout"
	case errors.Is(err, ErrRequestTimeout):
		reason = "request_timeout"
	case errors.Is(err, context.DeadlineExceeded):
		reason = "deadline"
	case errors.Is(err, ErrRevisionRemoved):
		reason = "revision_removed"
	case errors.Is(err, ErrRevisionFailing):
		reason = "revision_failing"
	default: // the client left: there is no one to answer
		h.log.Debug("activator: client left while held", "revision", t.name, "error", err)
		return
	}
	h.count(h.metrics.rejected, t, reason)
	h.log.Debug("activator: request refused", "revision", t.name, "reason", reason, "error", err)
	if h.rejectFn != nil {
		h.rejectFn(w, r, err)
		return
	}
	if reason == "request_timeout" {
		http.Error(w, "activator: "+err.Error(), http.StatusGatewayTimeout)
		return
	}
	secs := int(math.Ceil(t.retryAfter().Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	http.Error(w, "activator: "+err.Error(), http.StatusServiceUnavailable)
}

// heldBytes is what holding r costs against MaxHeldBytes.
func heldBytes(r *http.Request) int64 {
	n := int64(len(r.Method) + len(r.RequestURI) + len(r.Host))
	for k, vs := range r.Header {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4) // ": " and CRLF
		}
	}
	if r.ContentLength > 0 {
		// A client may declare up to math.MaxInt64: saturate rather than
		// wrap to a negative charge that would defeat the bound.
		n = min(n, math.MaxInt64-r.ContentLength) + r.ContentLength
	}
	return n
}

// idempotent reports whether a request with method m may be sent twice
// (RFC 9110 §9.2.2).
func idempotent(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace, http.MethodPut, http.MethodDelete:
		return true
	}
	return false
}

// trusts reports whether remoteAddr (a request's RemoteAddr) is one of
// Options.TrustedProxies.
func (h *Handler) trusts(remoteAddr string) bool {
	if len(h.trusted) == 0 {
		return false
	}
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
