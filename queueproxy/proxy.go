package queueproxy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/internal/breaker"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// Proxy is the queue-proxy in front of one app instance. It is an
// http.Handler: every request except health checks is counted in the
// stats on arrival, admitted by the breaker (answered 503 at once when
// the queue is full), bounded by the revision's timeouts and forwarded
// to the app. Run drives the stats periods and readiness probing;
// MetricsHandler serves the latest Stat for scraping; Drain stops it
// gracefully.
//
// To accept h2c (gRPC) the serving http.Server must enable unencrypted
// HTTP/2 (see NewServer). Requests reach the app in its protocol
// (Options.Protocol), whatever the client speaks: h2c for an h2c app,
// else HTTP/1.1 (WebSocket upgrades included).
// Responses without a Content-Length (chunked, streams) and
// text/event-stream responses are flushed to the client after every
// write; an upgraded connection or a stream counts as in flight for its
// whole life.
type Proxy struct {
	opts     Options
	t        timeouts
	firstArm time.Duration
	clock    clock.WithTickerAndDelayedExecution
	// realClock: per-request timers use time.AfterFunc directly.
	realClock bool
	log       *slog.Logger
	secret    []byte
	breaker   *breaker.Breaker
	rp        *httputil.ReverseProxy
	localRP   *httputil.ReverseProxy // for hop.Local requests
	stats     *statsRecorder
	prober    *prober
	metrics   *metrics     // nil: no metrics
	tracer    trace.Tracer // nil: no tracing
	prop      propagation.TextMapPropagator

	draining atomic.Bool
	// drainStart and lastArrival (clock nanoseconds) time the quiet
	// period: arrivals are recorded only while draining.
	drainStart  atomic.Int64
	lastArrival atomic.Int64
	quiet       time.Duration // 0: none
	idleMu      sync.Mutex
	idleCh      chan struct{} // closed when in-flight drops to 0 while draining

	upgradeMu   sync.Mutex
	upgraded    map[*exchange]struct{}
	upgradesCut bool // the drain limit passed: upgraded connections are closed
	latest      atomic.Pointer[[]byte]
	running     atomic.Bool
}

// New returns a Proxy for opts, or an error naming the first invalid
// field.
func New(opts Options) (*Proxy, error) {
	t, err := opts.validate()
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		opts:     opts,
		t:        t,
		clock:    opts.Clock,
		log:      opts.Logger,
		secret:   []byte(opts.ActivatorSecret),
		idleCh:   make(chan struct{}),
		upgraded: make(map[*exchange]struct{}),
		prop:     opts.Propagator,
	}
	if p.clock == nil {
		p.clock = clock.RealClock{}
	}
	_, p.realClock = p.clock.(clock.RealClock)
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	p.quiet = cmp.Or(opts.DrainQuietPeriod, DefaultDrainQuietPeriod)
	if p.quiet < 0 {
		p.quiet = 0
	}
	p.firstArm = t.request
	if t.responseStart < p.firstArm {
		p.firstArm = t.responseStart
	}
	if t.idle > 0 && t.idle < p.firstArm {
		p.firstArm = t.idle
	}
	cc := opts.ContainerConcurrency
	p.breaker, err = breaker.New(breaker.Params{QueueDepth: opts.QueueDepth, MaxConcurrency: cc, InitialCapacity: cc})
	if err != nil {
		return nil, err
	}
	p.stats = newStatsRecorder(p.clock.Now())
	idle := cc
	if idle == 0 {
		idle = unlimitedIdleConns
	}
	p.rp = &httputil.ReverseProxy{
		Rewrite:      p.rewrite,
		Transport:    hop.NewTransport(idle, opts.Protocol == revision.ProtocolH2C),
		ErrorHandler: p.proxyError,
		BufferPool:   hop.NewBufferPool(),
		ErrorLog:     slog.NewLogLogger(p.log.Handler(), slog.LevelDebug),
	}
	// Requests the activator hands over in process: the same pool and
	// connections, the edge's rewrite.
	p.localRP = &httputil.ReverseProxy{
		Rewrite:      p.rewriteLocal,
		Transport:    p.rp.Transport,
		ErrorHandler: p.proxyError,
		BufferPool:   p.rp.BufferPool,
		ErrorLog:     p.rp.ErrorLog,
	}
	p.prober = newProber(opts.Upstream, opts.Readiness)
	if opts.Registerer != nil {
		if p.metrics, err = newMetrics(opts, p); err != nil {
			return nil, err
		}
	}
	if opts.TracerProvider != nil {
		p.tracer = opts.TracerProvider.Tracer("github.com/zeroscale/zeroscale/queueproxy")
	}
	return p, nil
}

// InFlight is how many requests are in flight, queued ones included.
func (p *Proxy) InFlight() int { return int(p.stats.inFlight()) }

// ServeHTTP strips the internal headers (honouring them only from the
// trusted activator), answers health checks, and proxies everything else.
//
// A request the activator hands over in process (backend.Instance.Handler,
// one hop instead of two) is trusted as proxied without the secret, and
// the client's request is left untouched: the edge's header work (the
// internal headers removed, X-Forwarded-* and Forwarded set as the
// activator's edge, trace context injected) is done on the copy sent to
// the app.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if l := hop.LocalOf(r.Context()); l != nil {
		// The activator already took the client's internal headers
		// for what they are: not its own (rewriteLocal drops them).
		if r.URL.Path == HealthPath {
			p.serveHealth(w, r)
			return
		}
		p.proxy(w, r, true, p.localRP)
		return
	}
	idlePath := r.Header.Get(hop.IdleCheckHeader)
	trusted, probe, badProbe := p.hygiene(r)
	if trusted && idlePath != "" {
		p.serveIdleCheck(w, r, idlePath)
		return
	}
	if badProbe {
		// Knative's probe handler: the probe header takes exactly its
		// value, from anyone; anything else is a caller's mistake.
		writeText(w, http.StatusBadRequest, "unexpected probe header value")
		return
	}
	if probe || r.URL.Path == HealthPath {
		p.serveHealth(w, r)
		return
	}
	p.proxy(w, r, trusted, p.rp)
}

// hygiene decides whether r comes from the trusted activator, restores
// the Host the client used if the activator rewrote it, and removes
// every internal header so the app never sees them. badProbe is a probe
// header with another value than hop.ProbeValue.
func (p *Proxy) hygiene(r *http.Request) (trusted, probe, badProbe bool) {
	h := r.Header
	if v := h[hop.ActivatorHeader]; len(v) > 0 {
		trusted = len(p.secret) > 0 && subtle.ConstantTimeCompare([]byte(v[0]), p.secret) == 1
		delete(h, hop.ActivatorHeader)
	}
	if v := h[hop.OriginalHostHeader]; len(v) > 0 {
		if trusted && v[0] != "" {
			r.Host = v[0]
		}
		delete(h, hop.OriginalHostHeader)
	}
	if v := h[hop.ProbeHeader]; len(v) > 0 {
		probe = trusted && v[0] == hop.ProbeValue
		badProbe = v[0] != "" && v[0] != hop.ProbeValue // empty: none, as Knative reads it
		delete(h, hop.ProbeHeader)
	}
	delete(h, hop.RevisionHeader)
	delete(h, hop.IdleCheckHeader)
	return trusted, probe, badProbe
}

func (p *Proxy) proxy(w http.ResponseWriter, r *http.Request, trusted bool, rp *httputil.ReverseProxy) {
	now := p.clock.Now()
	p.stats.arrive(now, trusted)
	if p.draining.Load() {
		p.lastArrival.Store(now.UnixNano())
	}
	ex := p.newExchange(w, r, now, trusted)
	defer p.finish(ex)
	if p.tracer != nil {
		p.startSpan(ex, r)
	}
	if p.breaker != nil {
		if err := p.breaker.Acquire(ex.ctx); err != nil {
			p.queueFailed(ex, err)
			return
		}
		defer p.breaker.Release()
		if ex.span != nil {
			ex.span.SetAttributes(attrQueueWait.Float64(p.clock.Since(now).Seconds()))
		}
	}
	rp.ServeHTTP(ex, r.WithContext(ex.ctx))
}

// queueFailed answers a request that got no breaker slot, Knative's
// way: the revision's timeouts, which count queued time, answer 504; a
// full queue is a capacity answer, 503 with Retry-After; a deadline the
// host set on the request (a middleware) ends the wait with 503.
func (p *Proxy) queueFailed(ex *exchange, err error) {
	cause := context.Cause(ex.ctx)
	switch {
	case errors.Is(err, breaker.ErrQueueFull):
		ex.w.Header().Set("Retry-After", "1")
		ex.writeError(http.StatusServiceUnavailable, "queue full")
	case isTimeout(cause):
		ex.writeError(http.StatusGatewayTimeout, cause.Error()+" while queued")
	case errors.Is(cause, hop.ErrRequestTimeout):
		ex.writeError(http.StatusGatewayTimeout, "activator: "+cause.Error())
	case errors.Is(cause, context.DeadlineExceeded):
		ex.writeError(http.StatusServiceUnavailable, "deadline exceeded while queued")
	default:
		ex.writeError(http.StatusServiceUnavailable, "request canceled while queued")
	}
}

// finish runs when the handler returns or panics: it releases the
// exchange, writes a timeout response if nothing was written, records
// stats and metrics, and cuts a response that timed out after it
// started.
func (p *Proxy) finish(ex *exchange) {
	ex.mu.Lock()
	f := ex.flags.Or(flagDone)
	ex.mu.Unlock()
	ex.timer.Stop()
	if f&flagHijacked != 0 {
		p.untrackUpgrade(ex)
	}
	cut := false
	if f := ex.flags.Load(); f&(flagTimedOut|flagAnswered) == flagTimedOut {
		if f&flagWroteHeader == 0 {
			// The proxy saw the cancellation (possibly as a copy
			// error, which it reports by panicking with
			// ErrAbortHandler): nothing reached the client, so answer.
			if v := recover(); v != nil && v != http.ErrAbortHandler {
				panic(v)
			}
			ex.writeError(http.StatusGatewayTimeout, context.Cause(ex.ctx).Error())
		} else {
			cut = true
		}
	}
	ex.cancel(nil)
	now := p.clock.Now()
	if open := p.stats.exit(now, ex.trusted); open == 0 && p.draining.Load() {
		p.signalIdle()
	}
	if p.metrics != nil {
		p.metrics.observe(ex.code, now.Sub(ex.start))
	}
	if ex.span != nil {
		endSpan(ex, cut)
	}
	if cut {
		// Close the connection (or reset the stream) so the client
		// sees the response cut rather than a clean, short end.
		panic(http.ErrAbortHandler)
	}
}

// rewrite points the outgoing request at the app, keeping the Host the
// client used, and sets the forwarding headers.
func (p *Proxy) rewrite(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = p.opts.Upstream
	hop.SetForwarded(pr.In, pr.Out.Header)
}

// rewriteLocal is rewrite for a request the activator handed over in
// process (hop.Local): the edge's work on the outgoing copy, in this
// one hop.
func (p *Proxy) rewriteLocal(pr *httputil.ProxyRequest) {
	pr.Out.URL.Scheme = "http"
	pr.Out.URL.Host = p.opts.Upstream
	l := hop.LocalOf(pr.In.Context())
	hop.DelInternal(pr.Out.Header)
	hop.SetEdgeForwarded(pr.In, pr.Out.Header, l != nil && l.TrustForwarded)
	switch {
	case p.prop != nil:
		p.prop.Inject(pr.Out.Context(), propagation.HeaderCarrier(pr.Out.Header))
	case l != nil && l.Propagate:
		propagation.TraceContext{}.Inject(pr.Out.Context(), propagation.HeaderCarrier(pr.Out.Header))
	}
}

// proxyError answers a request the app could not serve: 502 for a
// refused or reset connection, nothing more for a timeout (finish
// answers it) or an upgrade closed by Drain.
func (p *Proxy) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	ex, ok := w.(*exchange)
	if !ok {
		http.Error(w, "bad gateway", http.StatusBadGateway)
		return
	}
	cause := context.Cause(r.Context())
	switch {
	case isTimeout(cause) || errors.Is(cause, errUpgradeDrainLimit):
	case errors.Is(cause, hop.ErrRequestTimeout):
		// The activator's bound of a held request, handed over in
		// process: its answer.
		ex.writeError(http.StatusGatewayTimeout, "activator: "+cause.Error())
	case errors.Is(cause, context.DeadlineExceeded):
		// A deadline the host set, not the revision's timeouts.
		ex.writeError(http.StatusGatewayTimeout, "deadline exceeded before the app answered")
	case r.Context().Err() != nil && hop.LocalOf(r.Context()) != nil:
		// The client left: the activator's hop answers no one (499).
	case r.Context().Err() != nil:
		p.log.Debug("request canceled", "path", r.URL.Path, "err", err)
		ex.writeError(http.StatusBadGateway, "request canceled")
	default:
		p.log.Warn("upstream error", "upstream", p.opts.Upstream, "err", err)
		ex.writeError(http.StatusBadGateway, "upstream unavailable")
	}
}

// Drain turns health checks to 503 "draining" at once and keeps
// serving new requests, as Knative's queue-proxy does on SIGTERM. It
// returns nil once DrainQuietPeriod has passed since Drain was first
// called and since the last request arrived (each arrival restarts the
// wait), and no request is in flight. Upgraded connections (WebSockets)
// still open UpgradeDrainLimit after the quiet period ended are closed.
// If ctx ends first, Drain returns an error wrapping ctx.Err(). Drain
// may be called more than once; the quiet period counts from the first
// call.
func (p *Proxy) Drain(ctx context.Context) error {
	p.drainStart.CompareAndSwap(0, p.clock.Now().UnixNano())
	p.draining.Store(true)
	if err := p.waitQuiet(ctx); err != nil {
		return err
	}
	limit := p.clock.NewTimer(cmp.Or(p.opts.UpgradeDrainLimit, DefaultUpgradeDrainLimit))
	defer limit.Stop()
	limitC := limit.C()
	for {
		p.idleMu.Lock()
		idle := p.idleCh
		p.idleMu.Unlock()
		n := p.stats.inFlight()
		if n == 0 {
			// A request that arrived while we waited may have been
			// the last: the quiet period restarts from it.
			if p.quietLeft() <= 0 {
				return nil
			}
			if err := p.waitQuiet(ctx); err != nil {
				return err
			}
			continue
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("queueproxy: drain: %d requests still in flight: %w", n, ctx.Err())
		case <-idle:
		case <-limitC:
			limitC = nil
			p.cutUpgrades()
		}
	}
}

// quietLeft is how much of the quiet period is left.
func (p *Proxy) quietLeft() time.Duration {
	if p.quiet == 0 {
		return 0
	}
	last := max(p.drainStart.Load(), p.lastArrival.Load())
	return time.Unix(0, last).Add(p.quiet).Sub(p.clock.Now())
}

// waitQuiet waits until the quiet period has passed with no arrival.
func (p *Proxy) waitQuiet(ctx context.Context) error {
	for {
		left := p.quietLeft()
		if left <= 0 {
			return nil
		}
		t := p.clock.NewTimer(left)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("queueproxy: drain: quiet period of %v not over: %w", p.quiet, ctx.Err())
		case <-t.C():
		}
	}
}

// Draining reports whether Drain was called.
func (p *Proxy) Draining() bool { return p.draining.Load() }

func (p *Proxy) signalIdle() {
	p.idleMu.Lock()
	close(p.idleCh)
	p.idleCh = make(chan struct{})
	p.idleMu.Unlock()
}

func (p *Proxy) trackUpgrade(ex *exchange) {
	p.upgradeMu.Lock()
	defer p.upgradeMu.Unlock()
	if p.upgradesCut {
		ex.cancel(errUpgradeDrainLimit)
		return
	}
	p.upgraded[ex] = struct{}{}
}

func (p *Proxy) untrackUpgrade(ex *exchange) {
	p.upgradeMu.Lock()
	delete(p.upgraded, ex)
	p.upgradeMu.Unlock()
}

// cutUpgrades closes every upgraded connection: cancelling the
// request's context makes the reverse proxy close both sides.
func (p *Proxy) cutUpgrades() {
	p.upgradeMu.Lock()
	defer p.upgradeMu.Unlock()
	p.upgradesCut = true
	for ex := range p.upgraded {
		ex.cancel(errUpgradeDrainLimit)
	}
	if n := len(p.upgraded); n > 0 {
		p.log.Warn("drain limit passed, closing upgraded connections", "count", n)
	}
}

// Run reports a Stat every ReportingPeriod (to Options.Reporter and to
// MetricsHandler) and probes the app: every
// revision.AggressiveProbePeriod from the start until it answers (at
// most StartupProbeLimit), then every Readiness.Period if set, else on
// demand from health checks. It returns nil when ctx is done, or an
// error at once if Run is already running.
func (p *Proxy) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("queueproxy: Run called while already running")
	}
	defer p.running.Store(false)
	// The ticker first, so a fake clock that has waiters has it.
	tick := p.clock.NewTicker(ReportingPeriod)
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { p.probeLoop(ctx) })
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C():
			p.report(now)
		}
	}
}

func (p *Proxy) report(now time.Time) {
	st := p.stats.report(now)
	st.Instance = p.opts.Instance
	var buf bytes.Buffer
	if err := stats.Encode(&buf, st); err != nil {
		p.log.Error("encode stat", "err", err)
		return
	}
	b := buf.Bytes()
	p.latest.Store(&b)
	if p.opts.Reporter != nil {
		p.opts.Reporter.Report(p.opts.Revision, st)
	}
}

// MetricsHandler serves the latest Stat at stats.Path (503 before the
// first period ended) and, if Options.Registerer is also a
// prometheus.Gatherer, the Prometheus metrics at /metrics. Serve it on a
// separate listener from the Proxy.
func (p *Proxy) MetricsHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+stats.Path, func(w http.ResponseWriter, _ *http.Request) {
		b := p.latest.Load()
		if b == nil {
			writeText(w, http.StatusServiceUnavailable, "no stats yet")
			return
		}
		w.Header().Set("Content-Type", stats.ContentType)
		_, _ = w.Write(*b)
	})
	if p.metrics != nil && p.metrics.gatherer != nil {
		mux.Handle("GET /metrics", p.metrics.handler())
	}
	return mux
}

func writeText(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(msg + "\n"))
}
