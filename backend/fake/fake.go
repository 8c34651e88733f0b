package fake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/engineopt"
	"github.com/zeroscale/zeroscale/revision"
)

// Defaults of Options.
const (
	// DefaultDrainTimeout is Kubernetes' default termination grace
	// period: the bound on DrainFunc, DrainDelay and the server's
	// graceful shutdown together.
	DefaultDrainTimeout = 30 * time.Second
	// DefaultMaxInstances bounds the instances (and so listening
	// sockets) of one revision.
	DefaultMaxInstances = 100
)

// Socket-level bounds of every instance's http.Server, in real time.
const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 60 * time.Second
)

// Errors of the fake's own methods, checkable with errors.Is.
var (
	// ErrClosed is returned by every method of a closed Backend.
	ErrClosed = errors.New("fake: backend closed")
	// ErrNoInstance is returned by Kill, Fail and SetReady for an
	// instance ID that is not live (unknown, or already gone).
	ErrNoInstance = errors.New("no live instance")
)

// Options configure a Backend. The zero value is usable: real clock,
// instances ready at once, answering 200 with the revision name.
type Options struct {
	// Clock drives start delays, drain timeouts and drain delays, and
	// stamps Instance.Started. Nil means the real clock; tests pass a
	// *testing.FakeClock and step it.
	Clock clock.WithTickerAndDelayedExecution

	// Handler returns the http.Handler the instances of rev serve. It is
	// called once, when Deploy first sees rev; all of rev's instances
	// share the handler (a handler can tell them apart by
	// http.LocalAddrContextKey, which is the instance's Address). Nil
	// means a handler answering 200 with the revision name and a
	// newline.
	Handler func(rev revision.Revision) http.Handler

	// StartDelay is how long after it starts an instance becomes ready.
	// StartJitter adds a uniformly random extra in [0, StartJitter],
	// drawn from a generator seeded with Seed, so a run is repeatable.
	// With both zero, instances are ready at once.
	StartDelay  time.Duration
	StartJitter time.Duration
	Seed        uint64

	// Drain is called before an instance that was ever ready is stopped
	// (scale-down, Remove), after the instance is published Draining.
	// Nil means no hook.
	Drain backend.DrainFunc
	// DrainTimeout bounds, on Clock, the whole stop of one instance from
	// the moment it is published Draining: Drain, DrainDelay and the
	// server's graceful shutdown. When it passes the server is closed,
	// cutting what is still in flight, as a SIGKILL after a grace period
	// would. Zero means DefaultDrainTimeout.
	DrainTimeout time.Duration
	// DrainDelay is a slow drain: the least time, on Clock, a draining
	// instance keeps serving after it is published Draining, even if
	// Drain returns sooner (as Knative's queue-proxy keeps serving for
	// its drain sleep after SIGTERM).
	DrainDelay time.Duration

	// MaxInstances bounds the desired scale of one revision; Scale above
	// it fails with ErrInvalidArgument. Zero means DefaultMaxInstances.
	MaxInstances int

	// Logger receives instance lifecycle events at debug level and
	// Drain errors at warn level. Nil discards.
	Logger *slog.Logger
}

// Backend is an in-memory backend.Backend whose instances are real HTTP
// servers on 127.0.0.1, on an injected clock, with fault injection. It is
// deterministic given Options.Seed and the order of calls. Close it to
// stop every server.
type Backend struct {
	opts   Options
	clock  clock.WithTickerAndDelayedExecution
	log    *slog.Logger
	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // server and stop goroutines
	fired  sync.WaitGroup // clock callbacks handed off, not yet applied

	mu         sync.Mutex
	closed     bool
	revs       map[string]*rev
	byID       map[string]*instance
	rng        *rand.Rand
	seq        uint64
	drainDelay time.Duration
	scaleFails int
	scaleErr   error
	freezes    int
	thaws      int
}

// rev is one deployed revision.
type rev struct {
	rev      revision.Revision
	handler  http.Handler
	desired  int
	reserved int                  // desired reserved instances (backend.Reserver), 0 or 1
	insts    map[string]*instance // every instance not yet stopped
	crashes  int                  // instances still to crash at start
	removing bool
	watch    backend.Broadcaster
}

// instance is one server and what the watch shows of it.
type instance struct {
	backend.Instance
	rev       *rev
	seq       uint64
	srv       *http.Server
	timer     clock.Timer // pending start or restart, nil otherwise
	crash     bool        // dies instead of becoming ready
	everReady bool
	stopping  bool
	thawed    chan struct{} // closed by Thaw; nil unless Frozen

	// Set when a drain begins, so the stop's timers exist on the clock
	// by the time Scale or Remove returns.
	drainCtx     context.Context // done at DrainTimeout, Kill or Close
	drainCancel  context.CancelFunc
	drainTimeout clock.Timer
	drainDelay   clock.Timer // nil without a DrainDelay
}

var (
	_ backend.Backend         = (*Backend)(nil)
	_ backend.StatusReporter  = (*Backend)(nil)
	_ backend.InstanceLimiter = (*Backend)(nil)
	_ backend.Reserver        = (*Backend)(nil)
	_ io.Closer               = (*Backend)(nil)
)

// New returns a Backend configured by opts, or an error naming the first
// invalid option.
func New(opts Options) (*Backend, error) {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"StartDelay", opts.StartDelay}, {"StartJitter", opts.StartJitter},
		{"DrainTimeout", opts.DrainTimeout}, {"DrainDelay", opts.DrainDelay},
	} {
		if d.v < 0 {
			return nil, fmt.Errorf("fake: Options.%s = %v: must be ≥ 0", d.name, d.v)
		}
	}
	if opts.MaxInstances < 0 {
		return nil, fmt.Errorf("fake: Options.MaxInstances = %d: must be ≥ 0 (0 means %d)", opts.MaxInstances, DefaultMaxInstances)
	}
	if opts.DrainTimeout == 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	if opts.MaxInstances == 0 {
		opts.MaxInstances = DefaultMaxInstances
	}
	b := &Backend{
		opts:       opts,
		clock:      opts.Clock,
		log:        opts.Logger,
		revs:       make(map[string]*rev),
		byID:       make(map[string]*instance),
		rng:        rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15)),
		drainDelay: opts.DrainDelay,
	}
	if b.clock == nil {
		b.clock = clock.RealClock{}
	}
	if b.log == nil {
		b.log = slog.New(slog.DiscardHandler)
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b, nil
}

// Deploy makes rev known. It starts nothing. Deploying the same name
// with an equal spec again does nothing; with another spec it fails with
// ErrInvalidArgument; while the name is being removed it fails with
// ErrTransient.
func (b *Backend) Deploy(ctx context.Context, r revision.Revision) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	name := r.Name()
	if r.IsZero() {
		return fmt.Errorf("fake: deploy: revision has no name (a zero revision.Revision): %w", backend.ErrInvalidArgument)
	}
	b.mu.Lock()
	known, err := b.known(r)
	b.mu.Unlock()
	if known || err != nil {
		return err
	}
	// The host's Handler runs without the lock held.
	h := http.Handler(defaultHandler(name))
	if b.opts.Handler != nil {
		if h = b.opts.Handler(r); h == nil {
			return fmt.Errorf("fake: deploy %s: Options.Handler returned nil: %w", name, backend.ErrInvalidArgument)
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if known, err := b.known(r); known || err != nil {
		return err // a concurrent Deploy won
	}
	b.revs[name] = &rev{rev: r, handler: h, insts: make(map[string]*instance)}
	b.log.Debug("fake: deployed", "revision", name)
	return nil
}

// known reports whether r is already deployed, or why it cannot be.
// b.mu must be held.
func (b *Backend) known(r revision.Revision) (bool, error) {
	if b.closed {
		return false, ErrClosed
	}
	old, ok := b.revs[r.Name()]
	switch {
	case !ok:
		return false, nil
	case old.removing:
		return false, fmt.Errorf("fake: deploy %s: the revision is being removed, retry: %w", r.Name(), backend.ErrTransient)
	case old.rev.SpecHash() != r.SpecHash():
		return false, fmt.Errorf("fake: deploy %s: already deployed with a different spec: %w", r.Name(), backend.ErrInvalidArgument)
	}
	return true, nil
}

func defaultHandler(name string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, name) }
}

// Scale sets the desired number of instances of the named revision and
// starts or stops instances to match before it returns: new instances
// are listed at once (ready once their start delay passes), victims are
// published Draining at once and stop in the background. Victims are
// the not-ready first, then the youngest. n must be in [0,
// Options.MaxInstances].
func (b *Backend) Scale(ctx context.Context, name string, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if n < 0 || n > b.opts.MaxInstances {
		return fmt.Errorf("fake: scale %s to %d: n must be in [0, %d]: %w", name, n, b.opts.MaxInstances, backend.ErrInvalidArgument)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.lookup(name)
	if err != nil {
		return fmt.Errorf("fake: scale %s: %w", name, err)
	}
	if b.scaleFails > 0 {
		b.scaleFails--
		return fmt.Errorf("fake: scale %s: injected failure: %w", name, b.scaleErr)
	}
	r.desired = n
	return b.settle(r)
}

// ScaleReserved sets the desired number of reserved instances of the
// named revision, 0 or 1, as backend.Reserver documents; the fake runs a
// reserved instance like a standard one (same handler, start delay and
// faults), with Instance.Reserved set.
func (b *Backend) ScaleReserved(ctx context.Context, name string, n int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := engineopt.ReservedCount("fake", name, n); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.lookup(name)
	if err != nil {
		return fmt.Errorf("fake: scale reserved %s: %w", name, err)
	}
	r.reserved = n
	return b.settle(r)
}

// Remove stops every instance of the named revision, draining the ready
// ones, and forgets the revision once the last one stopped; watches are
// closed then. It returns without waiting. Removing a revision being
// removed does nothing.
func (b *Backend) Remove(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.deployed("remove", name)
	if err != nil {
		return err
	}
	if r.removing {
		return nil
	}
	r.removing, r.desired, r.reserved = true, 0, 0
	b.log.Debug("fake: removing", "revision", name)
	return b.settle(r)
}

// Watch streams snapshots of the named revision's instances as
// backend.Backend documents (see backend.Broadcaster). A revision being
// removed can still be watched until it is gone.
func (b *Backend) Watch(ctx context.Context, name string) (<-chan []backend.Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.deployed("watch", name)
	if err != nil {
		return nil, err
	}
	return r.watch.Watch(ctx), nil
}

// Close stops every instance at once, without draining, closes every
// watch and waits for the engine's goroutines (not for Drain hooks that
// ignore their ctx). Later calls to any method return ErrClosed.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	b.cancel()
	for _, r := range b.revs {
		for _, in := range r.insts {
			b.kill(in)
		}
		r.watch.Close()
	}
	b.revs, b.byID = nil, nil
	b.mu.Unlock()
	b.wg.Wait()
	return nil
}

// deployed returns the deployed revision name, removing or not; op names
// the call in the not-found error. b.mu must be held.
func (b *Backend) deployed(op, name string) (*rev, error) {
	if b.closed {
		return nil, ErrClosed
	}
	r, ok := b.revs[name]
	if !ok {
		return nil, fmt.Errorf("fake: %s %s: %w", op, name, backend.ErrNotDeployed)
	}
	return r, nil
}

// lookup returns the deployed, not removing, revision name. b.mu must be
// held.
func (b *Backend) lookup(name string) (*rev, error) {
	if b.closed {
		return nil, ErrClosed
	}
	r, ok := b.revs[name]
	if !ok || r.removing {
		return nil, backend.ErrNotDeployed
	}
	return r, nil
}

// settle starts or stops instances of r until the not-stopping ones
// match r.desired, publishes the result, then begins the drains (so an
// instance is seen Draining before its Drain hook runs), and forgets r
// if it is removed and empty. b.mu must be held.
func (b *Backend) settle(r *rev) error {
	drains, err := b.settleKind(r, false, r.desired)
	more, rerr := b.settleKind(r, true, r.reserved)
	drains, err = append(drains, more...), cmp.Or(err, rerr)
	b.publish(r)
	for _, in := range drains {
		b.wg.Go(func() { b.drainAndStop(in) })
	}
	if r.removing && len(r.insts) == 0 {
		delete(b.revs, r.rev.Name())
		r.watch.Close()
		b.log.Debug("fake: removed", "revision", r.rev.Name())
	}
	return err
}

// settleKind starts or stops r's instances of one kind (reserved or
// not) to match want, and returns the ones to drain once the snapshot
// is published. b.mu must be held.
func (b *Backend) settleKind(r *rev, reserved bool, want int) (drains []*instance, err error) {
	var live []*instance
	for _, in := range r.insts {
		if !in.stopping && in.Reserved == reserved {
			live = append(live, in)
		}
	}
	for n := len(live); n < want; n++ {
		if err = b.start(r, reserved); err != nil {
			break
		}
	}
	if excess := len(live) - want; excess > 0 {
		// Victims: not ready first, then youngest.
		slices.SortFunc(live, func(x, y *instance) int {
			if x.Ready != y.Ready {
				if x.Ready {
					return 1
				}
				return -1
			}
			return -cmp.Compare(x.seq, y.seq)
		})
		for _, in := range live[:excess] {
			if b.stop(in) {
				drains = append(drains, in)
			}
		}
	}
	return drains, err
}

// start starts one instance of r, reserved or standard. b.mu must be
// held.
func (b *Backend) start(r *rev, reserved bool) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("fake: start an instance of %s: %w: %w", r.rev.Name(), backend.ErrTransient, err)
	}
	b.seq++
	in := &instance{
		Instance: backend.Instance{
			ID:       fmt.Sprintf("%s-i%d", r.rev.Name(), b.seq),
			Revision: r.rev.Name(),
			Address:  ln.Addr().String(),
			Started:  b.clock.Now(),
			Reserved: reserved,
		},
		rev: r,
		seq: b.seq,
		srv: &http.Server{
			ReadHeaderTimeout: readHeaderTimeout,
			IdleTimeout:       idleTimeout,
			ErrorLog:          slog.NewLogLogger(b.log.Handler(), slog.LevelWarn),
		},
	}
	in.srv.Handler = b.holdWhileFrozen(in, r.handler)
	if r.crashes > 0 {
		r.crashes--
		in.crash = true
	}
	r.insts[in.ID] = in
	b.byID[in.ID] = in
	b.wg.Go(func() { _ = in.srv.Serve(ln) })
	delay := b.opts.StartDelay
	if j := b.opts.StartJitter; j > 0 {
		// [0, j] has j+1 values; Int64N needs that to stay positive, and
		// the sum must not wrap to a negative (instant) delay.
		extra := time.Duration(b.rng.Int64N(int64(min(j, math.MaxInt64-1)) + 1))
		delay = min(delay, math.MaxInt64-extra) + extra
	}
	switch {
	case delay > 0:
		// A fake clock runs the callback with its own lock held, and
		// settle holds b.mu while it creates timers: hand off.
		in.timer = b.clock.AfterFunc(delay, b.handOff(func() { b.started(in) }))
	case in.crash:
		b.handOff(func() { b.started(in) })()
	default:
		in.Ready, in.everReady = true, true
		in.Listening = in.Started
	}
	b.log.Debug("fake: instance started", "id", in.ID, "address", in.Address, "readyIn", delay, "crash", in.crash)
	return nil
}

// handOff returns a clock callback that runs fn on a new goroutine: a
// fake clock runs callbacks with its own lock held, and the engine holds
// b.mu while it creates timers, so fn (which takes b.mu) cannot run
// inline. Flush waits for handed-off callbacks.
func (b *Backend) handOff(fn func()) func() {
	return func() {
		b.fired.Add(1)
		go func() {
			defer b.fired.Done()
			fn()
		}()
	}
}

// Flush waits until every start, crash and restart whose time has come
// on the clock has been applied and published. Call it after stepping a
// fake clock, from the goroutine that stepped it, to see the result at
// once (for example in Instances) instead of waiting on a watch. Stops
// (drains and shutdowns) are not covered: they run in the background.
func (b *Backend) Flush() { b.fired.Wait() }

// started ends in's start: it becomes ready, or crashes as injected.
func (b *Backend) started(in *instance) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || in.stopping || b.byID[in.ID] != in {
		return
	}
	in.timer = nil
	if in.crash {
		b.log.Debug("fake: instance crashed while starting", "id", in.ID)
		b.kill(in)
	} else {
		in.Ready, in.everReady = true, true
		in.Listening = b.clock.Now()
		b.log.Debug("fake: instance ready", "id", in.ID)
	}
	_ = b.settle(in.rev) // a failed restart is retried by the next change
}

// stop begins stopping in. An instance never ready had no traffic and is
// closed at once; otherwise it is marked Draining and stop reports that
// drainAndStop must run once the snapshot is published. b.mu must be
// held.
func (b *Backend) stop(in *instance) (drain bool) {
	in.stopping = true
	in.thaw() // resumed to be stopped
	if !in.everReady {
		b.kill(in)
		return false
	}
	in.Draining = true
	ctx, cancel := context.WithCancel(b.ctx)
	in.drainCtx, in.drainCancel = ctx, cancel
	// The callback only cancels: it runs under a fake clock's lock and
	// must not take b.mu.
	in.drainTimeout = b.clock.AfterFunc(b.opts.DrainTimeout, cancel)
	if b.drainDelay > 0 {
		in.drainDelay = b.clock.NewTimer(b.drainDelay)
	}
	return true
}

// kill closes in's server at once and forgets it. b.mu must be held.
func (b *Backend) kill(in *instance) {
	in.thaw()
	if in.timer != nil {
		in.timer.Stop()
		in.timer = nil
	}
	in.stopping = true
	if in.drainCancel != nil {
		in.drainCancel() // a drain in progress ends now
	}
	_ = in.srv.Close()
	delete(in.rev.insts, in.ID)
	delete(b.byID, in.ID)
}

// drainAndStop runs the drain hook for in, waits out its DrainDelay,
// shuts its server down gracefully and forgets it, all within
// DrainTimeout (stop set the timers).
func (b *Backend) drainAndStop(in *instance) {
	ctx := in.drainCtx
	defer in.drainTimeout.Stop()
	b.mu.Lock()
	view := in.Instance
	b.mu.Unlock()
	if b.opts.Drain != nil {
		done := make(chan struct{})
		go func() {
			defer close(done)
			if err := b.opts.Drain(ctx, view); err != nil {
				b.log.Warn("fake: drain hook failed; stopping anyway", "id", view.ID, "err", err)
			}
		}()
		select {
		case <-done:
		case <-ctx.Done():
		}
	}
	if in.drainDelay != nil {
		select {
		case <-in.drainDelay.C():
		case <-ctx.Done():
		}
		in.drainDelay.Stop()
	}
	if err := in.srv.Shutdown(ctx); err != nil {
		b.log.Warn("fake: drain timeout passed; closing the instance", "id", view.ID, "timeout", b.opts.DrainTimeout)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || b.byID[in.ID] != in {
		return // killed meanwhile
	}
	b.kill(in)
	b.log.Debug("fake: instance stopped", "id", in.ID)
	_ = b.settle(in.rev)
}

// publish sends r's current snapshot to its watchers. b.mu must be held.
func (b *Backend) publish(r *rev) {
	snap := make([]backend.Instance, 0, len(r.insts))
	for _, in := range r.insts {
		snap = append(snap, in.Instance)
	}
	r.watch.Publish(snap)
}
