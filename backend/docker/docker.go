package docker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/moby/moby/client"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/engineopt"
	"github.com/zeroscale/zeroscale/internal/front"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// errClosed is wrapped by every call on a closed Backend.
var errClosed = errors.New("docker backend closed")

// ErrClosed is returned (wrapping backend.ErrInvalidArgument, as the call
// can never succeed) by every method called after Close.
var ErrClosed = fmt.Errorf("%w: %w", backend.ErrInvalidArgument, errClosed)

// Proxy fronts one instance when Options.Proxy is set; a
// *queueproxy.Proxy is one. The backend serves it (HTTP/1.1 and h2c) on
// a loopback listener of its own, which is the instance's Address, and
// calls Drain after Options.Drain and before ContainerStop. A Proxy with
// a Probe(ctx) error method decides readiness by it (else by answering
// queueproxy.HealthPath); one with a Run(ctx) error method has it run
// for the instance's life.
type Proxy = front.Proxy

// ProxyFunc builds the proxy for inst (its ID, revision, Started and
// Address, the proxy's own, are set). target is where the container's
// port is published (127.0.0.1:<ephemeral port>). It is called once per
// instance, after the container started.
type ProxyFunc func(inst backend.Instance, target string, spec revision.Spec) (Proxy, error)

// QueueProxy returns a ProxyFunc that fronts every instance with a
// *queueproxy.Proxy built from base, taking Upstream, Revision, Instance,
// ContainerConcurrency, Timeouts and Readiness from the instance and its
// revision's spec, as backend/process.QueueProxy does.
func QueueProxy(base queueproxy.Options) ProxyFunc {
	return func(inst backend.Instance, target string, spec revision.Spec) (Proxy, error) {
		return front.NewQueueProxy(base, inst, target, spec)
	}
}

// Backend runs each instance of a revision as a Docker container on one
// engine. It implements backend.Backend, Status, MaxInstances and
// io.Closer; see the package documentation. Create it with New and stop
// it with Close.
type Backend struct {
	opts      Options
	cli       *client.Client
	ownClient bool
	host      string // where the client looks, for error messages

	// hard is cancelled when Close gives up waiting: drains and grace
	// periods are cut short and containers are killed.
	hard       context.Context
	hardCancel context.CancelFunc
	events     eventLoop

	wg    sync.WaitGroup // every instance and output goroutine
	outMu sync.Mutex     // serialises writes to Options.Output

	mu          sync.Mutex
	revs        map[string]*revState
	byContainer map[string]*instance // container ID → instance, while it exists
	closed      bool
	nextID      uint64
}

// revState is one deployed revision. Guarded by Backend.mu.
type revState struct {
	rev      revision.Revision
	spec     revision.Spec // with defaults
	imageID  string        // Spec.Image resolved at Deploy: instances all run the same image
	desired  int
	reserved int         // desired reserved instances (backend.Reserver), 0 or 1
	insts    []*instance // in creation order
	bc       backend.Broadcaster
	removing bool
	gone     chan struct{} // closed once removed

	// Slots whose instance crashed, waiting for their backoff to pass
	// before a new instance replaces it.
	pending []*slot
}

// New connects to the engine, removes every container that carries
// this backend's identity (left by an earlier run that was killed), and
// starts watching the engine's container events. An unreachable engine
// fails with backend.ErrTransient, a bad option with
// backend.ErrInvalidArgument.
func New(ctx context.Context, opts Options) (*Backend, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", backend.ErrInvalidArgument, err)
	}
	b := &Backend{
		opts:        o,
		cli:         o.Client,
		revs:        make(map[string]*revState),
		byContainer: make(map[string]*instance),
	}
	if b.cli == nil {
		b.cli, err = client.New(client.FromEnv)
		if err != nil {
			return nil, fmt.Errorf("docker: %w: client from the environment (DOCKER_HOST, DOCKER_CERT_PATH, DOCKER_TLS_VERIFY): %w",
				backend.ErrInvalidArgument, err)
		}
		b.ownClient = true
	}
	b.host = b.cli.DaemonHost()
	if _, err := b.cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		b.closeClient()
		return nil, b.engineErr("connect", err)
	}
	if n, err := b.removeLeftovers(ctx); err != nil {
		b.closeClient()
		return nil, err
	} else if n > 0 {
		o.Logger.Info("removed containers left by an earlier run", "identity", o.Identity, "containers", n)
	}
	b.hard, b.hardCancel = context.WithCancel(context.Background())
	b.events.start(b)
	return b, nil
}

var (
	_ backend.Backend = (*Backend)(nil)
)

func (b *Backend) closeClient() {
	if b.ownClient {
		_ = b.cli.Close()
	}
}

// Identity returns the identity label value of this backend's
// containers (Options.Identity, or the derived default).
func (b *Backend) Identity() string { return b.opts.Identity }

// MaxInstances is the most instances Scale accepts per revision
// (Options.MaxInstances).
func (b *Backend) MaxInstances() int { return b.opts.MaxInstances }

// Deploy makes rev runnable: its Spec.Image must exist in the engine
// (the backend never pulls); it is resolved to its image ID, so every
// instance of the revision runs the same image even if the tag moves.
// It starts nothing. Deploying the same name with the same spec again is
// a no-op; with a different spec it fails with ErrInvalidArgument.
func (b *Backend) Deploy(ctx context.Context, rev revision.Revision) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("docker: deploy %s: %w: %w", rev.Name(), backend.ErrTransient, err)
	}
	if rev.IsZero() {
		return fmt.Errorf("docker: deploy: %w: zero Revision (build it with revision.New)", backend.ErrInvalidArgument)
	}
	spec := rev.Spec().WithDefaults()
	if spec.Image == "" {
		return fmt.Errorf("docker: deploy %s: %w: Spec.Image is empty: the Docker backend runs images (Spec.Command alone is for backend/process)",
			rev.Name(), backend.ErrInvalidArgument)
	}
	b.mu.Lock()
	if rs, ok := b.revs[rev.Name()]; ok {
		defer b.mu.Unlock()
		return b.redeploy(rs, rev)
	}
	closed := b.closed
	b.mu.Unlock()
	if closed {
		return fmt.Errorf("docker: deploy %s: %w", rev.Name(), ErrClosed)
	}
	id, err := b.resolveImage(ctx, spec.Image)
	if err != nil {
		return fmt.Errorf("docker: deploy %s: %w", rev.Name(), err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("docker: deploy %s: %w", rev.Name(), ErrClosed)
	}
	if rs, ok := b.revs[rev.Name()]; ok { // deployed meanwhile
		return b.redeploy(rs, rev)
	}
	b.revs[rev.Name()] = &revState{rev: rev, spec: spec, imageID: id, gone: make(chan struct{})}
	b.opts.Logger.Info("revision deployed", "revision", rev.Name(), "image", spec.Image, "imageID", id)
	return nil
}

// redeploy is Deploy of a known name. Called with b.mu held.
func (b *Backend) redeploy(rs *revState, rev revision.Revision) error {
	switch {
	case rs.removing:
		return fmt.Errorf("docker: deploy %s: %w: the revision is being removed; retry once Remove returns",
			rev.Name(), backend.ErrTransient)
	case rs.rev.SpecHash() != rev.SpecHash():
		return fmt.Errorf("docker: deploy %s: %w: already deployed with a different spec (hash %.12s, got %.12s)",
			rev.Name(), backend.ErrInvalidArgument, rs.rev.SpecHash(), rev.SpecHash())
	}
	return nil
}

// lookup returns the revision, or ErrNotDeployed if it is unknown or being
// removed. Called with b.mu held.
func (b *Backend) lookup(op, name string) (*revState, error) {
	if b.closed {
		return nil, fmt.Errorf("docker: %s %s: %w", op, name, ErrClosed)
	}
	rs, ok := b.revs[name]
	if !ok || rs.removing {
		return nil, fmt.Errorf("docker: %s %s: %w", op, name, backend.ErrNotDeployed)
	}
	return rs, nil
}

// Scale sets the desired number of instances of a revision and returns;
// containers are created and started (in parallel), or drained and
// stopped, in the background. n must be in [0, Options.MaxInstances].
func (b *Backend) Scale(ctx context.Context, name string, n int) error {
	if n < 0 || n > b.opts.MaxInstances {
		return fmt.Errorf("docker: scale %s: %w: n = %d, want 0–%d (Options.MaxInstances)",
			name, backend.ErrInvalidArgument, n, b.opts.MaxInstances)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("docker: scale %s: %w: %w", name, backend.ErrTransient, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, err := b.lookup("scale", name)
	if err != nil {
		return err
	}
	if rs.desired != n {
		b.opts.Logger.Info("scale", "revision", name, "from", rs.desired, "to", n)
	}
	rs.desired = n
	b.reconcile(rs)
	return nil
}

// reconcile starts or stops instances of rs until the non-draining ones
// of each kind (counting the slots waiting to replace a crashed one)
// number rs.desired (standard) and rs.reserved. Victims are waiting
// slots first, then not-ready instances, then the youngest. Called with
// b.mu held.
func (b *Backend) reconcile(rs *revState) {
	b.reconcileKind(rs, false, rs.desired)
	b.reconcileKind(rs, true, rs.reserved)
	b.publish(rs)
}

// reconcileKind is reconcile of one kind; the caller publishes.
func (b *Backend) reconcileKind(rs *revState, reserved bool, want int) {
	live := make([]*instance, 0, len(rs.insts))
	for _, in := range rs.insts {
		if !in.draining && in.slot.reserved == reserved {
			live = append(live, in)
		}
	}
	pending := 0
	for _, sl := range rs.pending {
		if sl.reserved == reserved {
			pending++
		}
	}
	for i := len(live) + pending; i < want; i++ {
		b.startInstance(rs, &slot{backoff: b.opts.MinRestartBackoff, reserved: reserved})
	}
	excess := len(live) + pending - want
	for i := len(rs.pending) - 1; excess > 0 && i >= 0; i-- {
		if sl := rs.pending[i]; sl.reserved == reserved {
			rs.pending = slices.Delete(rs.pending, i, i+1)
			sl.timer.Stop()
			excess--
		}
	}
	if excess > 0 {
		slices.SortStableFunc(live, func(x, y *instance) int {
			if x.ready != y.ready {
				if !x.ready {
					return -1
				}
				return 1
			}
			return y.created.Compare(x.created) // youngest first
		})
		for _, in := range live[:excess] {
			in.beginStop()
		}
	}
}

// ScaleReserved sets the desired number of reserved instances of a
// revision, 0 or 1 (backend.Reserver). A reserved instance is a
// container like a standard one, labelled LabelKind "reserved", whose
// resources are the revision's reserved profile
// (revision.Scaling.Reserved): NanoCPUs and CPU shares from its CPU,
// Memory (and no swap beyond it) from its memory.
func (b *Backend) ScaleReserved(ctx context.Context, name string, n int) error {
	if err := engineopt.ReservedCount("docker", name, n); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("docker: scale reserved %s: %w: %w", name, backend.ErrTransient, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, err := b.lookup("scale reserved", name)
	if err != nil {
		return err
	}
	if rs.reserved != n {
		b.opts.Logger.Info("scale reserved", "revision", name, "from", rs.reserved, "to", n)
	}
	rs.reserved = n
	b.reconcile(rs)
	return nil
}

// startInstance starts a new instance (a new ID) in sl. Called with
// b.mu held; the caller publishes.
func (b *Backend) startInstance(rs *revState, sl *slot) {
	b.nextID++
	id := fmt.Sprintf("%s-%d", rs.rev.Name(), b.nextID)
	if sl.reserved {
		id = fmt.Sprintf("%s-reserved-%d", rs.rev.Name(), b.nextID)
	}
	in := newInstance(b, rs, sl, id, b.opts.Clock.Now())
	rs.insts = append(rs.insts, in)
	b.wg.Add(1)
	go in.run()
}

// crashed puts the slot of a crashed instance of rs in backoff: a new
// instance replaces it once the backoff passed. Called with b.mu held.
func (b *Backend) crashed(rs *revState, sl *slot, e backend.Exit, up time.Duration) {
	if up >= 2*b.opts.MaxRestartBackoff {
		sl.backoff = b.opts.MinRestartBackoff
	}
	sl.lastExit = &e
	delay := sl.backoff
	sl.backoff = min(2*sl.backoff, b.opts.MaxRestartBackoff)
	sl.nextStart = b.opts.Clock.Now().Add(delay)
	rs.pending = append(rs.pending, sl)
	sl.timer = b.opts.Clock.AfterFunc(delay, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		i := slices.Index(rs.pending, sl)
		if i < 0 || rs.removing || b.closed {
			return // dropped by a scale-down meanwhile
		}
		rs.pending = slices.Delete(rs.pending, i, i+1)
		sl.restarts++
		b.startInstance(rs, sl)
		b.publish(rs)
	})
}

// publish sends rs's current snapshot to its watchers. Called with b.mu
// held, so snapshots go out in the order the changes happened. An
// instance without an address yet (no proxy, container not started) is
// left out until it has one.
func (b *Backend) publish(rs *revState) {
	snap := make([]backend.Instance, 0, len(rs.insts))
	for _, in := range rs.insts {
		if in.addr != "" {
			snap = append(snap, in.instanceLocked())
		}
	}
	rs.bc.Publish(snap)
}

// Remove stops every instance of the revision (draining each first),
// removes its containers, forgets it, and returns once that is done or
// ctx ends (the stopping then goes on in the background; the error wraps
// backend.ErrTransient and ctx's error). Removing a revision that is
// being removed waits for the same removal.
func (b *Backend) Remove(ctx context.Context, name string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("docker: remove %s: %w", name, ErrClosed)
	}
	rs, ok := b.revs[name]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("docker: remove %s: %w", name, backend.ErrNotDeployed)
	}
	b.beginRemove(rs)
	b.mu.Unlock()
	select {
	case <-rs.gone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("docker: remove %s: %w: still stopping: %w", name, backend.ErrTransient, ctx.Err())
	}
}

// beginRemove starts stopping every instance of rs. Called with b.mu held.
func (b *Backend) beginRemove(rs *revState) {
	if rs.removing {
		return
	}
	rs.removing = true
	rs.desired, rs.reserved = 0, 0
	for _, sl := range rs.pending {
		sl.timer.Stop()
	}
	rs.pending = nil
	for _, in := range rs.insts {
		in.beginStop()
	}
	b.publish(rs)
	b.forgetIfEmpty(rs)
}

// forgetIfEmpty completes the removal of rs once its last instance is
// gone. Called with b.mu held.
func (b *Backend) forgetIfEmpty(rs *revState) {
	if !rs.removing || len(rs.insts) > 0 {
		return
	}
	delete(b.revs, rs.rev.Name())
	rs.bc.Close()
	close(rs.gone)
	b.opts.Logger.Info("revision removed", "revision", rs.rev.Name())
}

// Watch returns a channel of snapshots of the revision's instances: the
// current one at once, then one per change (capacity 1, the newest
// replaces an unread one). It is closed when ctx is done or the revision
// is removed.
func (b *Backend) Watch(ctx context.Context, name string) (<-chan []backend.Instance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, err := b.lookup("watch", name)
	if err != nil {
		return nil, err
	}
	return rs.bc.Watch(ctx), nil
}

// Close stops every instance of every revision (draining each first, as
// Remove does), removes every container this backend created, stops
// watching events and returns once all of that is done. It is bounded
// by Options.DrainTimeout (or the longest request timeout) plus
// StopGrace. Every later call fails with ErrClosed; Close itself may be
// called again and returns nil then.
func (b *Backend) Close() error {
	return b.Shutdown(context.Background())
}

// Shutdown is Close bounded by ctx: when ctx ends first, drains and
// grace periods are cut short, every remaining container is killed and
// removed, and Shutdown returns ctx's error once that is done.
func (b *Backend) Shutdown(ctx context.Context) error {
	b.mu.Lock()
	first := !b.closed
	b.closed = true
	if first {
		for _, rs := range b.revs {
			b.beginRemove(rs)
		}
	}
	b.mu.Unlock()
	if !first {
		return nil
	}
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("docker: close: instances killed: %w", ctx.Err())
		b.hardCancel()
		<-done
	}
	b.events.stop()
	// Whatever an engine error kept the instances from removing.
	sweepCtx, cancel := context.WithTimeout(context.Background(), engineCallTimeout)
	defer cancel()
	if _, serr := b.removeLeftovers(sweepCtx); serr != nil && err == nil {
		err = fmt.Errorf("docker: close: %w", serr)
	}
	b.hardCancel()
	b.closeClient()
	return err
}

// drainTimeout is how long an instance of spec gets to drain.
func (b *Backend) drainTimeout(spec revision.Spec) time.Duration {
	if b.opts.DrainTimeout > 0 {
		return b.opts.DrainTimeout
	}
	return spec.Timeouts.Request
}

// stopTimeout is ContainerStop's timeout in whole seconds, rounded up.
func (b *Backend) stopTimeout() int {
	return int(math.Ceil(b.opts.StopGrace.Seconds()))
}

// timeoutCtx is context.WithTimeout on the Backend's clock.
func (b *Backend) timeoutCtx(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	t := b.opts.Clock.AfterFunc(d, cancel)
	return ctx, func() {
		t.Stop()
		cancel()
	}
}

// listenLoopback binds a proxy listener on an ephemeral loopback port.
func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// factoryTimeout bounds ServerFactory's connection to the engine.
const factoryTimeout = time.Minute

// ServerFactory returns what zeroscale.Options.NewProxiedBackend takes:
// a Backend built with New from o, with o.Drain (when nil) set to the
// Server's DrainFunc and o.Proxy (when nil) to queue-proxies built from
// the Server's queue-proxy options, so every container is fronted by a
// queue-proxy in the host that reports to the Server's autoscaler:
//
//	srv, err := zeroscale.New(zeroscale.Options{
//		NewProxiedBackend: docker.ServerFactory(docker.Options{Identity: "myhost"}),
//	})
//
// New's connection to the engine is bounded by one minute.
func ServerFactory(o Options) func(drain backend.DrainFunc, qp queueproxy.Options) (backend.Backend, error) {
	return func(drain backend.DrainFunc, qp queueproxy.Options) (backend.Backend, error) {
		if o.Drain == nil {
			o.Drain = drain
		}
		if o.Proxy == nil {
			o.Proxy = QueueProxy(qp)
		}
		ctx, cancel := context.WithTimeout(context.Background(), factoryTimeout)
		defer cancel()
		return New(ctx, o)
	}
}
