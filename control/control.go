package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/otel/propagation"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// The back-off between retries of a transient backend error doubles
// from MinRetry to MaxRetry.
const (
	MinRetry = 100 * time.Millisecond
	MaxRetry = 5 * time.Second
)

// Errors of a Controller, checkable with errors.Is.
var (
	// ErrUnknownRevision: the revision was never added, or was removed.
	ErrUnknownRevision = errors.New("control: unknown revision")
	// ErrExists: Add of a revision the Controller already runs.
	ErrExists = errors.New("control: revision already added")
	// ErrClosed: the Controller was shut down.
	ErrClosed = errors.New("control: controller shut down")
)

// Options configure a Controller. NewBackend is required; the rest have
// useful zero values.
type Options struct {
	// NewBackend builds the engine. New calls it once, after it built
	// the activator, with the activator's WaitInstanceIdle as the
	// DrainFunc, so that no instance stops while the activator still has
	// a request on its way there. The Controller owns the engine:
	// Shutdown stops it (its Shutdown(ctx) when it has one, else
	// io.Closer).
	NewBackend backend.Factory
	// NewProxiedBackend, set instead of NewBackend, builds an engine
	// that fronts each instance with an in-process queue-proxy (as
	// backend/process with process.QueueProxy, and backend/docker, do):
	// New calls it once with the DrainFunc and the queue-proxy options
	// every such proxy must be built from (see ProxiedFactory).
	// Ownership as NewBackend.
	NewProxiedBackend ProxiedFactory
	// Config is the host's autoscaling configuration that Add resolves
	// each revision's scaling against; the zero value means
	// autoscaler.DefaultConfig().
	Config autoscaler.Config
	// Autoscaler configures the Multiscaler New builds. Its Publisher
	// must be nil: the Controller is the publisher. Clock and Logger
	// default to the Controller's. Its IdleCheck is the embedder's
	// idle check, asked before every revision goes to zero; the
	// Controller adds the HTTP check of revisions with
	// zeroscale.dev/idle-check-path (see autoscaler.IdleChecker; its
	// outcomes are also events: EventIdleBusy, EventIdleCheckFailed).
	Autoscaler autoscaler.Options
	// Activator configures the activator New builds; Picker is required.
	// Its Reporter must be nil: the autoscaler's collector is the
	// reporter. Clock and Logger default to the Controller's. An empty
	// Secret means a random one, which only in-process queue-proxies
	// (NewProxiedBackend) learn.
	Activator activator.Options
	// ScrapeStats says the engine runs each instance's queue-proxy out
	// of process, as a sidecar (backend/kubernetes): the autoscaler then
	// scrapes every instance's stats each second instead of waiting for
	// pushes (the activator still pushes its own). Leave it false for
	// engines with in-process queue-proxies.
	ScrapeStats bool
	// OnEvent, when set, receives every Event, in order for each
	// revision. It is called from the Controller's goroutines and must
	// not block (queue the event if handling it is slow); it must not
	// call Add or Remove.
	OnEvent func(Event)
	// Clock drives the retry back-off (and the autoscaler and activator
	// when their options leave it nil); nil means the real clock.
	Clock clock.WithTickerAndDelayedExecution
	// Logger; nil discards.
	Logger *slog.Logger
}

// ProxiedFactory builds an engine whose instances are fronted by
// in-process queue-proxies built from qp, calling drain before it stops
// an instance. qp carries what makes those proxies part of the
// Controller: the autoscaler's stats Reporter, the activator's secret,
// the Clock, Logger and TracerProvider, and no drain quiet period (the
// drain waits on the activator, which picks the instance no more).
type ProxiedFactory func(drain backend.DrainFunc, qp queueproxy.Options) (backend.Backend, error)

// Controller owns the life of revisions on one backend.Backend: it
// deploys each revision, feeds every backend.Watch snapshot to the
// activator and the autoscaler, applies the autoscaler's decisions with
// backend.Scale (newest first, capped at the engine's
// backend.InstanceLimiter, transient errors retried with bounded
// back-off, permanent ones reported as status and events), drains
// instances through the activator before the engine stops them, and
// tears a revision down in order. Routing (which revision a request
// goes to) stays the host's: the activator's Picker.
//
// Build it with New, start its loops with Run, add revisions with Add,
// and stop it with Shutdown. All methods are safe for concurrent use.
type Controller struct {
	o     Options
	clock clock.WithTickerAndDelayedExecution
	log   *slog.Logger
	be    backend.Backend
	limit int // the engine's cap of instances per revision, 0 = none
	act   *activator.Handler
	ms    *autoscaler.Multiscaler

	secret     string       // the activator's, for sidecar idle checks
	idleClient *http.Client // sidecar idle checks, bounded by the check's timeout

	ctx    context.Context // ends at Shutdown
	cancel context.CancelFunc
	wg     sync.WaitGroup // every revision's goroutines

	mu     sync.Mutex
	revs   map[string]*rev
	closed bool
}

// New builds the Controller with its autoscaler, its activator and its
// engine, in the order that breaks their construction cycle: the
// autoscaler publishes to the Controller, the activator reports demand
// to the autoscaler's collector, and the engine drains through the
// activator.
func New(o Options) (*Controller, error) {
	switch {
	case o.NewBackend == nil && o.NewProxiedBackend == nil:
		return nil, errors.New("control: Options.NewBackend (or NewProxiedBackend) is required")
	case o.NewBackend != nil && o.NewProxiedBackend != nil:
		return nil, errors.New("control: Options.NewBackend and NewProxiedBackend are both set: set one")
	}
	if o.Autoscaler.Publisher != nil {
		return nil, errors.New("control: Options.Autoscaler.Publisher must be nil: the Controller publishes")
	}
	if o.Activator.Reporter != nil {
		return nil, errors.New("control: Options.Activator.Reporter must be nil: the autoscaler's collector is the reporter")
	}
	if o.Config == (autoscaler.Config{}) {
		o.Config = autoscaler.DefaultConfig()
	}
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("control: Options.Config: %w", err)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Controller{o: o, clock: o.Clock, log: o.Logger, revs: make(map[string]*rev)}
	c.ctx, c.cancel = context.WithCancel(context.Background())

	ao := o.Autoscaler
	ao.Publisher = autoscaler.PublisherFunc(c.publish)
	ao.IdleCheck = autoscaler.IdleCheckerFunc(c.checkIdle)
	ao.OnIdleCheck = c.idleChecked
	if ao.Clock == nil {
		ao.Clock = o.Clock
	}
	if ao.Logger == nil {
		ao.Logger = o.Logger.With("component", "autoscaler")
	}
	var err error
	if c.ms, err = autoscaler.New(ao); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	ac := o.Activator
	ac.Reporter = c.ms.Reporter()
	if ac.Secret == "" {
		var key [16]byte
		if _, err := rand.Read(key[:]); err != nil {
			return nil, fmt.Errorf("control: activator secret: %w", err)
		}
		ac.Secret = hex.EncodeToString(key[:])
	}
	c.secret = ac.Secret
	c.idleClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	if ac.Clock == nil {
		ac.Clock = o.Clock
	}
	if ac.Logger == nil {
		ac.Logger = o.Logger.With("component", "activator")
	}
	if c.act, err = activator.New(ac); err != nil {
		return nil, fmt.Errorf("control: %w", err)
	}
	newBackend := o.NewBackend
	if newBackend == nil {
		qp := queueproxy.Options{
			Reporter:        c.ms.Reporter(),
			ActivatorSecret: ac.Secret,
			Clock:           o.Clock,
			Logger:          o.Logger.With("component", "queueproxy"),
			TracerProvider:  ac.TracerProvider,
			// W3C trace context, as the activator speaks it: the hop's
			// span continues the activator's trace and the app gets it.
			Propagator: propagation.TraceContext{},
			// The DrainFunc waits until the activator picks the
			// instance no more: no quiet period needed.
			DrainQuietPeriod: -1,
		}
		newBackend = func(drain backend.DrainFunc) (backend.Backend, error) { return o.NewProxiedBackend(drain, qp) }
	}
	be, err := newBackend(c.drain)
	if err == nil && be == nil {
		err = errors.New("Options.NewBackend returned a nil Backend")
	}
	if err != nil {
		return nil, fmt.Errorf("control: backend: %w", err)
	}
	c.be, c.limit = be, backend.MaxInstances(be)
	return c, nil
}

// drain is the engine's DrainFunc: it returns once the activator sends
// nothing more to inst and every request it sent there has finished
// (activator.Handler.WaitInstanceIdle), or ctx ends. Only then may a
// queue-proxy's own drain, which sees requests once they arrive, decide
// that inst is idle.
func (c *Controller) drain(ctx context.Context, inst backend.Instance) error {
	return c.act.WaitInstanceIdle(ctx, inst.Revision, inst.ID)
}

// Activator is the front door: serve it (behind the host's own routing,
// if any) to send requests to the revisions.
func (c *Controller) Activator() *activator.Handler { return c.act }

// Autoscaler is the Multiscaler; a host sets reachability
// (SetReachable) on it as its routes change.
func (c *Controller) Autoscaler() *autoscaler.Multiscaler { return c.ms }

// Reporter is where in-process queue-proxies push their stats (the
// autoscaler's collector).
func (c *Controller) Reporter() stats.Reporter { return c.ms.Reporter() }

// Backend is the engine NewBackend built, for its optional capabilities
// (backend.StatusReporter). Use Add, Remove and Shutdown rather than
// calling Deploy, Scale or Remove on it directly.
func (c *Controller) Backend() backend.Backend { return c.be }

// Run runs the autoscaler's and the activator's loops until ctx is
// done; it then returns ctx's error.
func (c *Controller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	wg.Go(func() { _ = c.ms.Run(ctx) })
	wg.Go(func() { c.act.Run(ctx) })
	wg.Wait()
	return ctx.Err()
}

// Add starts running rev: it deploys it on the engine (retrying
// transient errors until ctx ends), makes it routable in the activator,
// watches its instances and starts scaling it from its initial scale. A
// revision whose initial scale is 0 is Ready at once (Knative's rule for
// allow-zero-initial-scale), any other once its first instance serves.
// If a step fails, the steps before it are undone, last first, and the
// revision is removed from the engine again.
func (c *Controller) Add(ctx context.Context, rev revision.Revision) error {
	if rev.IsZero() {
		return fmt.Errorf("control: add: %w: a zero revision.Revision (build it with revision.New)", backend.ErrInvalidArgument)
	}
	name := rev.Name()
	params, err := c.o.Config.Resolve(rev.Spec())
	if err != nil {
		return fmt.Errorf("control: add %s: %w", name, err)
	}
	hook, err := newReserve(c.be, params.IdleMode)
	if err != nil {
		return fmt.Errorf("control: add %s: %w", name, err)
	}
	frz, err := newStandby(c.be, params)
	if err != nil {
		return fmt.Errorf("control: add %s: %w", name, err)
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.revs[name] != nil:
		c.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrExists, name)
	}
	r := newRev(c, rev)
	r.reserve, r.frz = hook, frz
	c.revs[name] = r // reserves the name; not published to until started
	c.mu.Unlock()

	if err := c.start(ctx, r, params); err != nil {
		c.mu.Lock()
		delete(c.revs, name)
		c.mu.Unlock()
		return fmt.Errorf("control: add %s: %w", name, err)
	}
	c.mu.Lock()
	closed := c.closed
	c.mu.Unlock()
	if closed { // Shutdown began meanwhile and did not see it
		_ = c.Remove(context.WithoutCancel(ctx), name)
		return ErrClosed
	}
	return nil
}

// start runs Add's steps, undoing the done ones if one fails.
func (c *Controller) start(ctx context.Context, r *rev, params autoscaler.ScalingParams) (err error) {
	name := r.name
	var undo []func()
	defer func() {
		if err != nil {
			for i := len(undo) - 1; i >= 0; i-- {
				undo[i]()
			}
		}
	}()
	if err := c.retry(ctx, func() error { return c.be.Deploy(ctx, r.rev) }); err != nil {
		return fmt.Errorf("deploy: %w", err)
	}
	undo = append(undo, func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), MaxRetry)
		defer cancel()
		if err := c.be.Remove(rctx, name); err != nil && !errors.Is(err, backend.ErrNotDeployed) {
			c.log.Warn("control: rollback: remove from the engine", "revision", name, "err", err)
		}
	})
	if err := c.act.SetRevision(r.rev); err != nil {
		return fmt.Errorf("activator: %w", err)
	}
	undo = append(undo, func() { c.act.RemoveRevision(name) })
	var ch <-chan []backend.Instance
	if err := c.retry(ctx, func() (err error) {
		ch, err = c.be.Watch(r.watchCtx, name)
		return err
	}); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	undo = append(undo, r.stop)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		r.watchLoop(ch)
	}()
	go func() {
		defer c.wg.Done()
		r.scaleLoop()
	}()
	src := autoscaler.Pushed
	if c.o.ScrapeStats {
		src = autoscaler.Scraped
	}
	if err := c.ms.Set(name, autoscaler.Revision{Params: params, Source: src}); err != nil {
		return fmt.Errorf("autoscaler: %w", err)
	}
	r.started.Store(true)
	if params.InitialScale == 0 {
		r.markReady(ReasonInitialScaleZero)
	}
	return nil
}

// retry calls f until it succeeds, fails permanently, or ctx (or the
// Controller) ends, with bounded exponential back-off between transient
// failures.
func (c *Controller) retry(ctx context.Context, f func() error) error {
	backoff := MinRetry
	for {
		err := f()
		if err == nil || !backend.IsTransient(err) {
			return err
		}
		t := c.clock.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-c.ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (gave up: %w)", err, ErrClosed)
		case <-t.C():
		}
		backoff = min(2*backoff, MaxRetry)
	}
}

// Remove stops running the revision, in order: the autoscaler stops
// deciding for it, the engine drains (through the activator) and stops
// every instance, then the activator forgets it (requests still held
// for it are answered 503) and its goroutines end. It returns once that
// is done or ctx ends (the engine then goes on stopping in the
// background).
func (c *Controller) Remove(ctx context.Context, name string) error {
	c.mu.Lock()
	r := c.revs[name]
	c.mu.Unlock()
	if r == nil || !r.started.Load() {
		return fmt.Errorf("%w: %s", ErrUnknownRevision, name)
	}
	if !r.removing.CompareAndSwap(false, true) {
		// Another Remove runs; wait for it.
		select {
		case <-r.gone:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("control: remove %s: %w", name, ctx.Err())
		}
	}
	c.ms.Remove(name)
	r.stopScaling()
	err := c.be.Remove(ctx, name)
	if errors.Is(err, backend.ErrNotDeployed) {
		err = nil
	}
	if err == nil {
		// Some engines return before their instances stopped; the
		// watch closes once they have.
		select {
		case <-r.watched:
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	c.act.RemoveRevision(name)
	r.stop()
	c.mu.Lock()
	if c.revs[name] == r {
		delete(c.revs, name)
	}
	c.mu.Unlock()
	close(r.gone)
	if err != nil {
		return fmt.Errorf("control: remove %s: %w", name, err)
	}
	return nil
}

// Revisions returns the names of the revisions the Controller runs,
// sorted.
func (c *Controller) Revisions() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.revs))
	for name, r := range c.revs {
		if r.started.Load() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Shutdown removes every revision (as Remove does, all at once), then
// stops the engine and waits for the Controller's goroutines. If ctx
// ends first, what is left is cut short and ctx's error is returned.
// Later Add calls fail with ErrClosed; Run should be stopped by its own
// ctx.
func (c *Controller) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	var errs []error
	var emu sync.Mutex
	var wg sync.WaitGroup
	for _, name := range c.Revisions() {
		wg.Go(func() {
			if err := c.Remove(ctx, name); err != nil && !errors.Is(err, ErrUnknownRevision) {
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		})
	}
	wg.Wait()
	if err := closeBackend(ctx, c.be); err != nil {
		errs = append(errs, fmt.Errorf("control: stop the backend: %w", err))
	}
	c.cancel()
	c.wg.Wait()
	c.idleClient.CloseIdleConnections()
	return errors.Join(errs...)
}

// closeBackend stops an engine: with its Shutdown(ctx) when it has one
// (so ctx bounds it, as http.Server's), else its Close.
func closeBackend(ctx context.Context, b backend.Backend) error {
	switch c := b.(type) {
	case interface{ Shutdown(context.Context) error }:
		return c.Shutdown(ctx)
	case io.Closer:
		return c.Close()
	}
	return nil
}

// publish is the Multiscaler's Publisher: it records d and hands its
// scale to the revision's scale loop without blocking.
func (c *Controller) publish(d autoscaler.Decision) {
	c.mu.Lock()
	r := c.revs[d.Revision]
	c.mu.Unlock()
	if r == nil || r.removing.Load() {
		return
	}
	r.decide(d)
}

func (c *Controller) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = c.clock.Now()
	}
	c.log.Debug("control: "+e.String(), "revision", e.Revision)
	if c.o.OnEvent != nil {
		c.o.OnEvent(e)
	}
}

// Status returns the Controller's view of the named revision.
func (c *Controller) Status(name string) (Status, error) {
	c.mu.Lock()
	r := c.revs[name]
	c.mu.Unlock()
	if r == nil || !r.started.Load() {
		return Status{}, fmt.Errorf("%w: %s", ErrUnknownRevision, name)
	}
	return r.status(), nil
}
