package autoscaler

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// ErrUnknownRevision is returned for a revision the Multiscaler does not
// know (never Set, or Removed).
var ErrUnknownRevision = errors.New("autoscaler: unknown revision")

// Knative's SKS probe before scale to zero (kpa/scaler.go probePeriod
// and probeTimeout): Options.ActivatorProbe is tried every
// ActivatorProbePeriod; after ActivatorProbeTimeout without success the
// scale-down goes ahead anyway (Knative retries without end).
const (
	ActivatorProbePeriod  = time.Second
	ActivatorProbeTimeout = 45 * time.Second
)

// activationTimeoutBuffer is added to a revision's progress deadline
// (ScalingParams.ProgressDeadline) before one stuck Activating
// with nothing to do is scaled to zero as failed, as Knative does.
const activationTimeoutBuffer = 30 * time.Second

// State is a revision's activity, Knative's PodAutoscaler Active condition.
type State int

// States of a revision.
const (
	// StateActivating: instances are wanted but fewer than needed are
	// serving (Knative's Active=Unknown).
	StateActivating State = iota
	// StateActive: enough instances serve.
	StateActive
	// StateInactive: no traffic; the activator is in the path and the
	// revision is at, or on its way to, zero.
	StateInactive
)

func (s State) String() string {
	switch s {
	case StateActivating:
		return "Activating"
	case StateActive:
		return "Active"
	case StateInactive:
		return "Inactive"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Reasons of a Decision, Knative's.
const (
	ReasonQueued    = "Queued"    // Activating: requests wait for instances
	ReasonNoTraffic = "NoTraffic" // Inactive: no demand for a stable window
	ReasonTimedOut  = "TimedOut"  // Inactive: instances never served
)

// Decision is what the Multiscaler wants for one revision.
type Decision struct {
	Revision string
	// Time is when it was made (the injected clock).
	Time time.Time
	// Scale is the number of instances the revision should run: the host
	// passes it to backend.Scale. It starts at the initial scale.
	Scale int
	// Desired is the decider's desired scale after min, max and initial
	// scale; while the decider does not know, the last known one, or −1
	// before any. It is 0 while an inactive revision waits out its grace
	// period, with Scale still 1.
	Desired int
	// ExcessBurstCapacity is the decider's; negative keeps the activator
	// in the path.
	ExcessBurstCapacity int
	// Panicking is the decider's panic mode.
	Panicking bool
	// ActivatorInPath says the activator should front the revision
	// (Knative's SKS proxy mode): unless Desired is positive and the
	// excess burst capacity is not negative, traffic goes through the
	// activator.
	ActivatorInPath bool
	// State and Reason are the revision's activity.
	State  State
	Reason string
}

// Publisher receives the Multiscaler's decisions. Publish is called from
// the Multiscaler's loop goroutine, one call at a time, each time a
// revision's decision changes (any field but Time and
// ExcessBurstCapacity, of which only the sign counts, as in Knative); it
// must not block: hand slow work (backend.Scale) to another goroutine.
type Publisher interface {
	Publish(d Decision)
}

// PublisherFunc adapts a function to Publisher.
type PublisherFunc func(d Decision)

// Publish calls f(d).
func (f PublisherFunc) Publish(d Decision) { f(d) }

// Source says where a revision's stats come from.
type Source int

// Sources of stats.
const (
	// Pushed: in-process queue-proxies and activators push through
	// Report; no stat within a stable window reads as zero demand.
	Pushed Source = iota
	// Scraped: the revision's instances serve stats at stats.Path and
	// are scraped every second (unless its target burst capacity is −1,
	// Knative's rule); no stat within a stable window means "no data"
	// and no decision. Activators still push.
	Scraped
)

// Options configure a Multiscaler. Publisher is required.
type Options struct {
	// Publisher receives every changed decision.
	Publisher Publisher
	// Clock drives the decision tick, the scrape tick and every timer of
	// the scale-to-zero state machine. nil means the real clock.
	Clock clock.WithTicker
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the zeroscale_autoscaler_* collectors; nil
	// means none are registered.
	Registerer prometheus.Registerer
	// HTTPClient and MaxConcurrentScrapes configure scraping, see
	// collectorOptions.
	HTTPClient           *http.Client
	MaxConcurrentScrapes int
	// ActivatorProbe, if set, confirms that requests for a revision
	// reach an activator (e.g. activator.CheckInPath against the
	// address clients use), as Knative's SKS probe does: an inactive
	// revision is not scaled to zero until it returned nil once (tried
	// every ActivatorProbePeriod, at most ActivatorProbeTimeout; not for
	// a target burst capacity of −1, which keeps the activator in the
	// path). Its ctx ends when the revision becomes active again or is
	// removed; each call should be bounded (a probe). nil means requests
	// always reach the activator (it is the only front door, as in the
	// root Server).
	ActivatorProbe func(ctx context.Context, revision string) error
	// NewDecider builds a revision's decider at its first decision, with
	// the serving count known then; nil means NewKPA.
	NewDecider DeciderFactory
	// IdleCheck, when set, is asked before a revision with no requests
	// goes to zero, and may keep it for one more grace period (see
	// IdleChecker).
	IdleCheck IdleChecker
	// IdleCheckTimeout bounds each IdleCheck call: 0 means
	// DefaultIdleCheckTimeout (2 s); at most MaxIdleCheckTimeout.
	IdleCheckTimeout time.Duration
	// OnIdleCheck, when set, is told each idle check's outcome: idle is
	// the verdict applied (true when err is not nil: an error counts as
	// idle). It is called from the check's goroutine and must not block.
	OnIdleCheck func(revision string, idle bool, err error)
}

// DeciderFactory builds the Decider of one revision from its scaling
// parameters, at its first decision (now, with serving instances taking
// requests).
// It is the extension point for scaling policies (NewKPA is the
// default).
type DeciderFactory func(p ScalingParams, now time.Time, serving int) (Decider, error)

// DeciderUpdater is implemented by a Decider that can take new scaling
// parameters in place, keeping its state (the KPA does); a Decider that
// is not one is rebuilt by its DeciderFactory when the parameters change.
type DeciderUpdater interface {
	Update(p ScalingParams) error
}

// Multiscaler runs the per-revision scaler loop: every TickInterval it
// reads each revision's windows from its collector, asks the revision's
// Decider, applies min, max and initial scale and the scale-to-zero state
// machine, and publishes changed Decisions. All revisions share one
// ticker goroutine (plus the collector's scrape goroutine); a revision
// costs memory, not goroutines. All methods are safe for concurrent use.
type Multiscaler struct {
	pub         Publisher
	clock       clock.WithTicker
	log         *slog.Logger
	coll        *collector
	newDecider  DeciderFactory
	probeInPath func(ctx context.Context, revision string) error

	idle        IdleChecker // nil: no idle check
	idleTimeout time.Duration
	onIdle      func(string, bool, error)
	ctx         atomic.Pointer[context.Context] // Run's

	mu   sync.Mutex
	revs map[string]*scaler
	out  []Decision // decisions to publish, reused between ticks

	running atomic.Bool

	pokeMu sync.Mutex
	poked  map[string]struct{} // at most one entry per revision
	wake   chan struct{}       // capacity 1
}

// scaler is one revision's state, guarded by Multiscaler.mu.
type scaler struct {
	name        string
	params      ScalingParams
	col         *collection
	dec         Decider // nil until the first decision
	serving     int     // instances that take requests (SetInstances)
	unreachable bool

	rec           Recommendation // the last valid decision
	stable, panic float64        // the last observed values
	decisions     uint64

	state       State
	reason      string
	since       time.Time // when state last changed
	initialized bool      // serving reached the initial scale once
	scale       int       // the published Scale
	proxySince  time.Time // when last.ActivatorInPath last became true

	// The idle check (Options.IdleCheck) of this inactive spell: idleGen
	// changes with every state change, dropping a stale answer.
	idleGen    uint64
	idleAsking bool
	idleAnswer idleAnswer
	vetoUntil  time.Time // busy: no scale to zero before

	// last is the last published decision, the zero Decision (empty
	// Revision) before the first; its ActivatorInPath is the current one.
	last Decision
	// inPath is the running or finished ActivatorProbe of this inactive
	// period; nil while active.
	inPath *inPathProbe
}

// inPathProbe is one inactive period's ActivatorProbe.
type inPathProbe struct {
	done     bool // confirmed, or given up on: scale to zero may proceed
	deadline time.Time
	cancel   context.CancelFunc
}

func (s *scaler) stopInPathProbe() {
	if s.inPath != nil {
		s.inPath.cancel()
		s.inPath = nil
	}
}

// published reports whether a decision was published: every decision
// carries the revision name, never empty (collector.Add refuses it).
func (s *scaler) published() bool { return s.last.Revision != "" }

// New returns a Multiscaler. Call Run to start its loops.
func New(o Options) (*Multiscaler, error) {
	if o.Publisher == nil {
		return nil, errors.New("autoscaler: Options.Publisher is required")
	}
	if o.IdleCheckTimeout < 0 || o.IdleCheckTimeout > MaxIdleCheckTimeout {
		return nil, fmt.Errorf("autoscaler: Options.IdleCheckTimeout %v, want in [0, %v] (0 = %v)",
			o.IdleCheckTimeout, MaxIdleCheckTimeout, DefaultIdleCheckTimeout)
	}
	m := &Multiscaler{
		pub:         o.Publisher,
		clock:       o.Clock,
		log:         o.Logger,
		newDecider:  o.NewDecider,
		probeInPath: o.ActivatorProbe,
		idle:        o.IdleCheck,
		idleTimeout: cmp.Or(o.IdleCheckTimeout, DefaultIdleCheckTimeout),
		onIdle:      o.OnIdleCheck,
		revs:        make(map[string]*scaler),
		poked:       make(map[string]struct{}),
		wake:        make(chan struct{}, 1),
	}
	if m.clock == nil {
		m.clock = clock.RealClock{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.newDecider == nil {
		m.newDecider = func(p ScalingParams, now time.Time, serving int) (Decider, error) {
			return NewKPA(p, now, serving)
		}
	}
	m.coll = newCollector(collectorOptions{
		Clock:                m.clock,
		Logger:               m.log,
		HTTPClient:           o.HTTPClient,
		MaxConcurrentScrapes: o.MaxConcurrentScrapes,
		OnDemand:             m.Poke,
	})
	if o.Registerer != nil {
		if err := o.Registerer.Register(newMetrics(m)); err != nil {
			return nil, fmt.Errorf("autoscaler: register metrics: %w", err)
		}
	}
	return m, nil
}

// Reporter is where the revisions' stats go: give it to in-process
// queue-proxies and activators. A pushed stat that shows demand for a
// revision at zero pokes it (see Poke).
func (m *Multiscaler) Reporter() stats.Reporter { return m.coll }

// Revision is one revision as the host feeds it to Set.
type Revision struct {
	// Params are its scaling parameters (Config.Resolve).
	Params ScalingParams
	// Source says where its stats come from: Pushed or Scraped.
	Source Source
	// Serving is how many of its instances already serve when the
	// Multiscaler first learns of it, such as after a host restart (0
	// for a revision just deployed). Its Scale then starts at that
	// count rather than at the initial scale, and its decider is created
	// with it, so with more than one the KPA starts in panic and does
	// not scale down for a stable window (the metric history was lost),
	// as in Knative. Set ignores it for a revision it already knows:
	// SetInstances reports what serves from then on.
	Serving int
}

// Set starts scaling the revision name, or updates its parameters and
// source. A new revision's first Decision (Scale = its initial scale, or
// r.Serving when that is positive) is published at once by Run's
// goroutine; the host is expected to run it at that scale. Set and
// SetInstances are the two ways a host feeds a revision: its settings,
// and what its engine runs.
func (m *Multiscaler) Set(name string, r Revision) error {
	rev, p, src := name, r.Params, r.Source
	if r.Serving < 0 {
		return fmt.Errorf("autoscaler: revision %s: Revision.Serving %d, want ≥ 0", rev, r.Serving)
	}
	if err := p.validate(); err != nil {
		return fmt.Errorf("autoscaler: revision %s: %w", rev, err)
	}
	if src != Pushed && src != Scraped {
		return fmt.Errorf("autoscaler: revision %s: Source %d, want Pushed (%d) or Scraped (%d)", rev, src, Pushed, Scraped)
	}
	p.Metric = cmp.Or(p.Metric, revision.MetricConcurrency)
	if err := m.coll.Add(rev, p, src == Scraped); err != nil {
		return err
	}
	col := m.coll.get(rev)
	m.mu.Lock()
	s, ok := m.revs[rev]
	if ok {
		s.params, s.col = p, col
		if u, ok := s.dec.(DeciderUpdater); ok {
			if err := u.Update(p); err != nil {
				m.mu.Unlock()
				return fmt.Errorf("autoscaler: revision %s: %w", rev, err)
			}
		} else {
			s.dec = nil // rebuilt with the new parameters at the next decision
		}
		m.mu.Unlock()
		return nil
	}
	now := m.clock.Now()
	scale := p.InitialScale
	if r.Serving > 0 {
		scale = r.Serving // what runs now stands until a decision says otherwise
	}
	s = &scaler{
		name: rev, params: p, col: col, serving: r.Serving,
		rec:   Recommendation{DesiredScale: -1, ExcessBurstCapacity: initialEBC(p)},
		state: StateActivating, since: now, scale: scale,
	}
	m.revs[rev] = s
	m.mu.Unlock()
	m.Poke(rev)
	return nil
}

// initialEBC is Knative's excess burst capacity before any decision.
func initialEBC(p ScalingParams) int {
	if p.TargetBurstCapacity == 0 || p.TargetBurstCapacity == -1 {
		return int(p.TargetBurstCapacity)
	}
	return saturate(float64(p.InitialScale)*p.TotalValue - p.TargetBurstCapacity)
}

// Remove stops scaling rev and forgets it and its windows. Nothing more
// is published for it.
func (m *Multiscaler) Remove(rev string) {
	m.mu.Lock()
	if s := m.revs[rev]; s != nil {
		s.stopInPathProbe()
	}
	delete(m.revs, rev)
	m.mu.Unlock()
	m.coll.Remove(rev)
	m.pokeMu.Lock()
	delete(m.poked, rev)
	m.pokeMu.Unlock()
}

func (m *Multiscaler) with(rev string, f func(s *scaler)) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.revs[rev]
	if !ok {
		return fmt.Errorf("%w: %s", ErrUnknownRevision, rev)
	}
	f(s)
	return nil
}

// setServing sets rev's number of serving instances (tests; hosts use
// SetInstances).
func (m *Multiscaler) setServing(rev string, n int) error {
	if n < 0 {
		return fmt.Errorf("autoscaler: revision %s: serving count %d, want ≥ 0", rev, n)
	}
	return m.with(rev, func(s *scaler) { s.serving = n })
}

// SetInstances sets rev's instances, as the backend's Watch reports them:
// the serving ones (Instance.Serving) are the scrape targets, and count
// as serving unless Reserved. A reserved instance (idle-mode reserve) is a stand-in
// for zero on a cheaper profile, not capacity the decider sizes: its
// load is demand (its stats count like any instance's), which the
// decider answers with standard instances, and until they serve the
// revision is Activating.
func (m *Multiscaler) SetInstances(rev string, instances []backend.Instance) error {
	n := 0
	for _, in := range instances {
		if in.Serving() && !in.Reserved {
			n++
		}
	}
	if err := m.with(rev, func(s *scaler) { s.serving = n }); err != nil {
		return err
	}
	m.coll.SetTargets(rev, instances)
	return nil
}

// SetReachable says whether a route sends traffic to rev (revisions are
// reachable until told otherwise, as Knative treats an unknown
// reachability). An unreachable revision ignores min-scale, initial scale,
// the scale-down rate limit and delay, and the pod retention period.
func (m *Multiscaler) SetReachable(rev string, reachable bool) error {
	return m.with(rev, func(s *scaler) { s.unreachable = !reachable })
}

// decision returns rev's last published decision: the zero Decision
// (empty Revision) until the first is published, or ErrUnknownRevision.
// Hosts keep what their Publisher was given (control.Status.Decision);
// this is for tests.
func (m *Multiscaler) decision(rev string) (Decision, error) {
	var d Decision
	err := m.with(rev, func(s *scaler) { d = s.last })
	return d, err
}

// Poke asks for an immediate decision for rev if its desired scale is 0
// or unknown: the scale-from-zero fast path. The collector pokes when a
// pushed stat shows concurrency; activators may also call it directly.
// It never blocks. Pokes wait (one entry per name) for the running loop,
// which drops those of revisions it does not know.
func (m *Multiscaler) Poke(rev string) {
	m.pokeMu.Lock()
	m.poked[rev] = struct{}{}
	m.pokeMu.Unlock()
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// Run runs the decision loop and the scrape loop until ctx is done, then
// returns ctx's error. Only one Run may be active at a time.
func (m *Multiscaler) Run(ctx context.Context) error {
	if !m.running.CompareAndSwap(false, true) {
		return errors.New("autoscaler: Multiscaler is already running")
	}
	defer m.running.Store(false)
	m.ctx.Store(&ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = m.coll.Run(ctx)
	}()
	defer wg.Wait()
	t := m.clock.NewTicker(TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
			m.tick(m.clock.Now())
		case <-m.wake:
			m.handlePokes(m.clock.Now())
		}
	}
}

// tick decides for every revision and publishes what changed.
func (m *Multiscaler) tick(now time.Time) {
	m.mu.Lock()
	for _, s := range m.revs {
		m.step(s, now)
	}
	m.publish()
}

// handlePokes decides at once for the poked revisions whose desired scale
// is 0 or unknown.
func (m *Multiscaler) handlePokes(now time.Time) {
	m.pokeMu.Lock()
	poked := m.poked
	if len(poked) == 0 {
		m.pokeMu.Unlock()
		return
	}
	m.poked = make(map[string]struct{}, len(poked))
	m.pokeMu.Unlock()
	m.mu.Lock()
	for rev := range poked {
		if s, ok := m.revs[rev]; ok && (s.rec.DesiredScale <= 0 || !s.published()) {
			m.step(s, now)
		}
	}
	m.publish()
}

// publish sends the queued decisions, releasing m.mu first so the
// Publisher may call back into the Multiscaler.
func (m *Multiscaler) publish() {
	out := m.out
	m.out = nil
	m.mu.Unlock()
	for i := range out {
		m.pub.Publish(out[i])
		out[i] = Decision{}
	}
	m.mu.Lock()
	if m.out == nil {
		m.out = out[:0]
	}
	m.mu.Unlock()
}

// step makes one decision for s at now and queues it if it changed.
// m.mu is held.
func (m *Multiscaler) step(s *scaler, now time.Time) {
	if s.dec == nil {
		d, err := m.newDecider(s.params, now, s.serving)
		if err == nil && d == nil {
			err = errors.New("Options.NewDecider returned a nil Decider and no error")
		}
		if err != nil {
			m.log.Error("autoscaler: cannot build decider", "revision", s.name, "err", err)
			return
		}
		s.dec = d
	}
	stable, panicV, err := s.col.stableAndPanic(s.params.Metric, now)
	switch {
	case err == nil:
		s.stable, s.panic = stable, panicV
		s.rec = s.dec.Decide(now, Observed{Stable: stable, Panic: panicV, Serving: s.serving, Unreachable: s.unreachable})
		s.decisions++
	case errors.Is(err, errNoData):
		// No decision: the previous one stands.
	default:
		m.log.Error("autoscaler: cannot read metrics", "revision", s.name, "err", err)
	}

	want, apply := m.bound(s, now)
	s.markActivity(want, now)
	// An unknown want keeps the last known one in the published
	// decision, as Knative's PodAutoscaler status keeps its DesiredScale.
	desired := want
	if want < 0 && s.published() && s.last.Desired >= 0 {
		desired = s.last.Desired
	}
	// Traffic goes straight to the instances only when they are wanted
	// and have burst capacity to spare; otherwise, and while nothing is
	// known yet, the activator fronts them (Knative's SKS Proxy mode, or
	// Serve mode falling back to the activator without endpoints).
	proxy := desired <= 0 || s.rec.ExcessBurstCapacity < 0
	if proxy && !s.last.ActivatorInPath {
		s.proxySince = now
	}
	if apply {
		s.scale = want
	}

	d := Decision{
		Revision:            s.name,
		Time:                now,
		Scale:               s.scale,
		Desired:             desired,
		ExcessBurstCapacity: s.rec.ExcessBurstCapacity,
		Panicking:           s.rec.Panicking,
		ActivatorInPath:     proxy,
		State:               s.state,
		Reason:              s.reason,
	}
	if !s.published() || changed(s.last, d) {
		s.last = d
		m.out = append(m.out, d)
	}
	s.col.scaling.Store(s.rec.DesiredScale > 0)
}

func changed(a, b Decision) bool {
	return a.Scale != b.Scale || a.Desired != b.Desired || a.Panicking != b.Panicking ||
		a.ActivatorInPath != b.ActivatorInPath || a.State != b.State || a.Reason != b.Reason ||
		(a.ExcessBurstCapacity < 0) != (b.ExcessBurstCapacity < 0)
}

// minScale is the effective min-scale at now: the larger of min-scale
// and the floor schedule's (pre-warm lead included), ignored when
// unreachable.
func (s *scaler) minScale(now time.Time) int {
	if s.unreachable {
		return 0
	}
	return max(s.params.MinScale, s.params.FloorSchedule.Floor(now, s.params.FloorLeadTime))
}

// bound applies min, max and initial scale and the scale-to-zero state
// machine to the decider's desired scale (Knative's KPA scaler.scale). It
// returns the wanted scale (−1: unknown) and whether to apply it.
func (m *Multiscaler) bound(s *scaler, now time.Time) (int, bool) {
	desired := s.rec.DesiredScale
	if desired < 0 && s.state != StateActivating {
		return desired, false
	}
	lo, hi := s.minScale(now), s.params.MaxScale
	// Until the revision first reaches its initial scale, that is a floor.
	if i := s.params.InitialScale; i > 1 && !s.initialized && !s.unreachable {
		lo = max(lo, i)
	}
	if desired < lo {
		desired = lo
	}
	if hi > 0 && desired > hi {
		desired = hi
	}
	if desired != 0 {
		return desired, true
	}
	return m.toZero(s, now)
}

// toZero is Knative's handleScaleToZero for a desired scale of 0.
func (m *Multiscaler) toZero(s *scaler, now time.Time) (int, bool) {
	p := &s.params
	if !p.EnableScaleToZero {
		return 1, true
	}
	switch s.state {
	case StateActivating:
		// Stuck activating past the progress deadline: give up, scale to 0.
		deadline := cmp.Or(p.ProgressDeadline, revision.DefaultProgressDeadline)
		if now.Sub(s.since) > deadline+activationTimeoutBuffer {
			return 0, true
		}
		return -1, false
	case StateActive:
		// Only a revision active for a stable window may go inactive;
		// until then it keeps one instance.
		if now.Sub(s.since) >= p.StableWindow {
			return 0, false
		}
		return 1, true
	default: // inactive
		if !m.activatorInPath(s) {
			return 0, false
		}
		retention := p.ScaleToZeroPodRetentionPeriod
		if s.unreachable {
			retention = 0
		}
		inactive := now.Sub(s.since)
		if inactive >= max(p.ScaleToZeroGracePeriod, retention) {
			return m.mayGoToZero(s, now)
		}
		if retention > 0 && inactive < retention {
			return 0, false
		}
		// Fast path: the activator has fronted the revision for the
		// whole grace period already.
		if s.last.ActivatorInPath && now.Sub(s.proxySince) >= p.ScaleToZeroGracePeriod {
			return m.mayGoToZero(s, now)
		}
		return 0, false
	}
}

// markActivity is Knative's computeActiveCondition.
func (s *scaler) markActivity(want int, now time.Time) {
	lo := s.minScale(now)
	minServing := max(lo, 1)
	if !s.initialized {
		minServing = max(lo, s.params.InitialScale)
	}
	if s.serving >= minServing {
		s.initialized = true
	}
	switch {
	case want == 0 || minServing == 0:
		if s.state == StateActivating && minServing > 0 {
			s.set(StateInactive, ReasonTimedOut, now)
		} else {
			s.set(StateInactive, ReasonNoTraffic, now)
		}
	case s.serving < minServing:
		if want > 0 || s.state != StateInactive {
			s.set(StateActivating, ReasonQueued, now)
		} else {
			s.set(StateInactive, ReasonNoTraffic, now)
		}
	default:
		if want > 0 || s.state != StateInactive {
			s.set(StateActive, "", now)
		}
	}
}

func (s *scaler) set(st State, reason string, now time.Time) {
	if s.state != st {
		s.since = now
		if st != StateInactive {
			s.stopInPathProbe()
		}
		s.idleGen++
		s.idleAsking, s.idleAnswer, s.vetoUntil = false, idleNone, time.Time{}
	}
	s.state, s.reason = st, reason
}

// activatorInPath reports whether requests for the inactive revision s
// are known to reach an activator, starting the ActivatorProbe of this
// inactive period when none runs. m.mu is held.
func (m *Multiscaler) activatorInPath(s *scaler) bool {
	if m.probeInPath == nil || s.params.TargetBurstCapacity == -1 {
		return true
	}
	if p := s.inPath; p != nil {
		if !p.done && !m.clock.Now().Before(p.deadline) {
			// Bounded, as Knative's probe timeout; decided here, on the
			// decision's clock, not by the probing goroutine.
			m.log.Warn("autoscaler: requests not confirmed to reach the activator; scaling to zero anyway",
				"revision", s.name, "after", ActivatorProbeTimeout)
			p.done = true
			p.cancel()
		}
		return p.done
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &inPathProbe{cancel: cancel, deadline: m.clock.Now().Add(ActivatorProbeTimeout)}
	s.inPath = p
	// Made here, under the lock, so a fake clock stepped after this
	// decision fires it.
	tick := m.clock.NewTicker(ActivatorProbePeriod)
	name := s.name
	go func() {
		defer tick.Stop()
		for {
			err := m.probeInPath(ctx, name)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				m.mu.Lock()
				if s.inPath == p {
					p.done = true
				}
				m.mu.Unlock()
				m.Poke(name)
				return
			}
			m.log.Debug("autoscaler: activator not yet in path", "revision", name, "err", err)
			select {
			case <-ctx.Done():
				return
			case <-tick.C():
			}
		}
	}()
	return false
}
