package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/client"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/front"
	"github.com/zeroscale/zeroscale/internal/probe"
	"github.com/zeroscale/zeroscale/revision"
)

// phase is where an instance is in its life (finer than
// backend.InstanceState).
type phase string

// Instance phases; Status maps them to backend.InstanceState.
const (
	// phaseCreating: ContainerCreate and ContainerStart are under way.
	phaseCreating phase = "Creating"
	// phaseStarting: the container runs and has not passed its
	// readiness probe yet.
	phaseStarting phase = "Starting"
	// phaseRunning: it passed its readiness probe (Ready may drop again
	// when Spec.Readiness.Period makes it probe again and it fails).
	phaseRunning phase = "Running"
	// phaseDraining: it was chosen to stop and is being drained.
	phaseDraining phase = "Draining"
	// phaseStopping: drained; ContainerStop (SIGTERM, SIGKILL after
	// Options.StopGrace) and removal are under way.
	phaseStopping phase = "Stopping"
)

// startTimes are the phases of one instance's start, for diagnostics and
// cold-start measurements. A zero time means the phase was not reached.
type startTimes struct {
	// Begin is when the backend decided to create the instance.
	Begin time.Time
	// Created is when ContainerCreate returned.
	Created time.Time
	// Started is when ContainerStart returned.
	Started time.Time
	// Listening is when the app first answered on its published port.
	Listening time.Time
	// Ready is when the instance passed its readiness probe (through the
	// proxy, when there is one) and was published Ready.
	Ready time.Time
}

// slot is one place among a revision's desired instances: its current
// (or last) instance and the crashes that replaced earlier ones. Guarded
// by Backend.mu.
type slot struct {
	restarts  int           // instances after the first
	backoff   time.Duration // the next crash's delay
	lastExit  *backend.Exit
	lastID    string // the crashed instance's, while waiting
	nextStart time.Time
	timer     clock.Timer // the pending restart, while waiting
	reserved  bool        // its instances are reserved ones (backend.Reserver)
}

// instance is one container of a revision. Its run goroutine owns the
// container; the fields below stop are guarded by Backend.mu.
type instance struct {
	b       *Backend
	rs      *revState
	slot    *slot
	id      string
	name    string // the container's name
	created time.Time
	stop    chan struct{} // closed by beginStop
	died    chan struct{} // closed by markDied
	dieOnce sync.Once
	ln      net.Listener // the proxy's, bound at creation
	front   *front.Front // owned by the run goroutine
	// stopFollow ends the following of the container's output, which
	// closes followed; run goroutine only, nil when not following.
	stopFollow context.CancelFunc
	followed   chan struct{}

	container string // ID, once created
	addr      string // the proxy's, or the published port's
	target    string // the published port, once started
	ready     bool
	draining  bool
	state     phase
	oom       bool
	timings   startTimes
	// frozen: published Frozen (Backend.Freeze) until thawed; paused:
	// its container is paused; freezes counts freezes, so a probe that
	// overlapped one is ignored.
	frozen, paused bool
	freezes        int
}

// newInstance creates an instance. With a proxy, its listener is bound
// at once, so the instance has one Address from its first snapshot on.
// Called with b.mu held.
func newInstance(b *Backend, rs *revState, sl *slot, id string, now time.Time) *instance {
	in := &instance{
		b: b, rs: rs, slot: sl, id: id, created: now,
		name:  sanitizeName("zs-" + b.opts.Identity + "-" + id),
		stop:  make(chan struct{}),
		died:  make(chan struct{}),
		state: phaseCreating,
	}
	in.timings.Begin = now
	if b.opts.Proxy != nil {
		if ln, err := listenLoopback(); err == nil {
			in.ln, in.addr = ln, ln.Addr().String()
		}
		// else: run fails the instance as a crash, and it is replaced.
	}
	return in
}

func (in *instance) instanceLocked() backend.Instance {
	return backend.Instance{
		ID:        in.id,
		Revision:  in.rs.rev.Name(),
		Address:   in.addr,
		Ready:     in.ready,
		Draining:  in.draining,
		Frozen:    in.frozen,
		Started:   in.created,
		Listening: in.timings.Listening,
		Reserved:  in.slot.reserved,
	}
}

// beginStop marks the instance Draining and tells its run goroutine to
// drain and stop it. The caller publishes. Called with b.mu held.
func (in *instance) beginStop() {
	if in.draining {
		return
	}
	in.frozen = false // shutdown unpauses it first
	in.draining = true
	in.state = phaseDraining
	close(in.stop)
}

// markDied tells the run goroutine the engine reports its container
// gone or exited.
func (in *instance) markDied() { in.dieOnce.Do(func() { close(in.died) }) }

// update changes the instance's fields under b.mu and publishes.
func (in *instance) update(f func()) {
	in.b.mu.Lock()
	defer in.b.mu.Unlock()
	f()
	in.b.publish(in.rs)
}

func (in *instance) log() []any {
	return []any{"revision", in.rs.rev.Name(), "instance", in.id}
}

// callCtx bounds one engine call (cut short by a hard stop).
func (in *instance) callCtx(extra time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(in.b.hard, engineCallTimeout+extra)
}

// run supervises the instance from creation to removal: create, start,
// probe, serve, and drain, stop and remove it when told to; or, when the
// container dies or misses its start timeout, record the crash and
// leave, so the revision replaces it (a new instance) after a backoff.
func (in *instance) run() {
	defer in.b.wg.Done()
	exit, up := in.life()
	in.finish(exit, up)
}

// life runs the instance and returns its crash (nil if it was stopped)
// and how long it was up.
func (in *instance) life() (*backend.Exit, time.Duration) {
	b := in.b
	clk := b.opts.Clock
	if b.opts.Proxy != nil && in.ln == nil {
		return in.failed(-1, "listen for the proxy: no free loopback port"), 0
	}
	select {
	case <-in.stop:
		return nil, 0
	default:
	}
	if err := in.create(); err != nil {
		return in.failed(-1, "create: "+err.Error()), 0
	}
	started := clk.Now()
	if err := in.start(); err != nil {
		in.removeContainer(true)
		return in.failed(-1, "start: "+err.Error()), 0
	}
	reason := in.waitReady()
	if reason == "" {
		b.opts.Logger.Info("instance ready", in.readyLog()...)
		reason = in.serve()
	}
	switch reason {
	case "stop":
		in.shutdown()
		return nil, clk.Since(started)
	case "died":
		return in.collectCrash(), clk.Since(started)
	}
	// Missed the start timeout, or the proxy could not be built.
	e := in.failed(-1, reason)
	in.captureLogs(e)
	in.removeContainer(true)
	return e, clk.Since(started)
}

// mu runs f under b.mu.
func (in *instance) mu(f func()) {
	in.b.mu.Lock()
	defer in.b.mu.Unlock()
	f()
}

func (in *instance) failed(code int, reason string) *backend.Exit {
	return &backend.Exit{Code: code, Reason: reason, Time: in.b.opts.Clock.Now()}
}

// create creates the container, replacing a leftover of the same name
// that carries this backend's identity (a name conflict with anybody
// else's container is an error).
func (in *instance) create() error {
	b := in.b
	opts := in.containerOptions()
	for attempt := 0; ; attempt++ {
		ctx, cancel := in.callCtx(0)
		res, err := b.cli.ContainerCreate(ctx, opts)
		cancel()
		if err == nil {
			for _, w := range res.Warnings {
				b.opts.Logger.Warn("engine warning on create", append(in.log(), "warning", w)...)
			}
			in.mu(func() {
				in.container = res.ID
				in.timings.Created = b.opts.Clock.Now()
				b.byContainer[res.ID] = in
			})
			return nil
		}
		if !cerrdefs.IsConflict(err) || attempt > 0 {
			return b.engineErr("create container "+in.name, err)
		}
		if err := in.removeConflicting(); err != nil {
			return err
		}
	}
}

// removeConflicting removes the container named in.name if it is this
// backend's own leftover.
func (in *instance) removeConflicting() error {
	b := in.b
	ctx, cancel := in.callCtx(0)
	defer cancel()
	res, err := b.cli.ContainerInspect(ctx, in.name, client.ContainerInspectOptions{})
	if err != nil {
		return b.engineErr("inspect conflicting container "+in.name, err)
	}
	if res.Container.Config == nil || res.Container.Config.Labels[LabelIdentity] != b.opts.Identity {
		return fmt.Errorf("docker: create container %s: %w: the name is taken by a container this backend does not own (identity label %q); remove it or change Options.Identity",
			in.name, backend.ErrInvalidArgument, LabelIdentity)
	}
	b.opts.Logger.Info("removing a leftover container with the same name", append(in.log(), "container", shortID(res.Container.ID))...)
	if _, err := b.cli.ContainerRemove(ctx, res.Container.ID, client.ContainerRemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
		return b.engineErr("remove leftover container "+in.name, err)
	}
	return nil
}

// start starts the container and reads back its published port.
func (in *instance) start() error {
	b := in.b
	var cid string
	in.mu(func() { cid = in.container })
	ctx, cancel := in.callCtx(0)
	defer cancel()
	if _, err := b.cli.ContainerStart(ctx, cid, client.ContainerStartOptions{}); err != nil {
		return b.engineErr("start container "+in.name, err)
	}
	now := b.opts.Clock.Now()
	res, err := b.cli.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	if err != nil {
		return b.engineErr("inspect container "+in.name, err)
	}
	if st := res.Container.State; st != nil && !st.Running {
		// Exited already (its die event may be on its way): a crash,
		// with its exit code and output collected as any other.
		in.mu(func() { in.timings.Started = now })
		in.startFollowing(cid)
		in.markDied()
		return nil
	}
	target, err := publishedAddr(res.Container, in.rs.spec.Port)
	if err != nil {
		return fmt.Errorf("container %s: %w", in.name, err)
	}
	in.update(func() {
		in.timings.Started = now
		in.target = target
		if in.addr == "" {
			in.addr = target
		}
		if !in.draining {
			in.state = phaseStarting
		}
	})
	b.opts.Logger.Info("container started", append(in.log(), "container", shortID(cid), "published", target)...)
	in.startFollowing(cid)
	return nil
}

// startFollowing follows the container's output, when Options ask for
// it, until finish.
func (in *instance) startFollowing(cid string) {
	if !in.b.following() {
		return
	}
	ctx, cancel := context.WithCancel(in.b.hard)
	in.stopFollow, in.followed = cancel, make(chan struct{})
	in.b.wg.Add(1)
	go in.follow(ctx, cid, in.followed)
}

// outputFlushTimeout bounds the wait, once the container is gone, for
// its log stream to deliver the last lines and end.
const outputFlushTimeout = time.Second

// endFollowing lets the output stream end by itself (it does once the
// container stopped), bounded by outputFlushTimeout, then cancels it.
func (in *instance) endFollowing() {
	if in.stopFollow == nil {
		return
	}
	t := in.b.opts.Clock.NewTimer(outputFlushTimeout)
	select {
	case <-in.followed:
	case <-t.C():
	}
	t.Stop()
	in.stopFollow()
	<-in.followed
}

// waitReady probes until the instance is ready (""), its container died
// ("died"), it is stopped ("stop"), or the start timeout passed or the
// proxy could not be built (the reason). The next probe runs 1 ms plus
// 5 % of the time since the first, at most
// revision.AggressiveProbePeriod (50 ms) later, as backend/process does.
func (in *instance) waitReady() string {
	b := in.b
	clk := b.opts.Clock
	left := b.opts.StartTimeout - clk.Since(in.created)
	deadline := clk.NewTimer(max(left, 0))
	defer deadline.Stop()
	tick := clk.NewTimer(0)
	defer tick.Stop()
	start := clk.Now()
	listening := false
	for {
		select {
		case <-in.died:
			return "died"
		case <-in.stop:
			return "stop"
		case <-deadline.C():
			return fmt.Sprintf("not ready within %v (Options.StartTimeout)", b.opts.StartTimeout)
		case <-tick.C():
		}
		if !listening && in.probe(probeListening) == nil {
			listening = true
			in.mu(func() { in.timings.Listening = clk.Now() })
			if err := in.startFront(); err != nil {
				return "proxy: " + err.Error()
			}
		}
		if listening && in.probe(in.readiness) == nil {
			in.update(func() {
				in.ready = true
				in.timings.Ready = clk.Now()
				if !in.draining {
					in.state = phaseRunning
				}
			})
			return ""
		}
		tick.Reset(min(time.Millisecond+clk.Since(start)/20, revision.AggressiveProbePeriod))
	}
}

// probe runs one attempt of check, bounded by aggressiveProbeTimeout.
func (in *instance) probe(check func(ctx context.Context, addr string, timeout time.Duration) error) error {
	ctx, cancel := in.b.timeoutCtx(in.b.hard, aggressiveProbeTimeout)
	defer cancel()
	return check(ctx, in.target, aggressiveProbeTimeout)
}

// readiness is the instance's verdict once the app listens: the proxy's
// (which probes the app as Spec.Readiness says), else Spec.Readiness's
// HTTP probe of the published port, or nothing more for a TCP probe
// (probeListening was stricter than a connect already).
func (in *instance) readiness(ctx context.Context, addr string, timeout time.Duration) error {
	if in.front != nil {
		return in.front.Probe(ctx)
	}
	p := in.rs.spec.Readiness
	if p.HTTPPath == "" {
		return probeListening(ctx, addr, timeout)
	}
	p.Timeout = min(p.Timeout, timeout)
	return probe.NewApp(addr, p).Check(ctx)
}

// startFront builds the instance's proxy, now that its target is known,
// and serves it on the instance's listener.
func (in *instance) startFront() error {
	b := in.b
	if b.opts.Proxy == nil || in.front != nil {
		return nil
	}
	var inst backend.Instance
	in.mu(func() { inst = in.instanceLocked() })
	p, err := b.opts.Proxy(inst, in.target, in.rs.spec)
	if err == nil && p == nil {
		err = errors.New("Options.Proxy returned a nil Proxy")
	}
	if err != nil {
		return err
	}
	in.front = front.Serve(p, in.ln, b.opts.Logger.With(in.log()...))
	return nil
}

// serve waits, while the instance is ready, for its container to die
// ("died") or the instance to be stopped ("stop"). With a
// Spec.Readiness.Period it keeps probing and publishes readiness changes.
func (in *instance) serve() string {
	var tick <-chan time.Time
	period := in.rs.spec.Readiness.Period
	if period > 0 {
		t := in.b.opts.Clock.NewTicker(period)
		defer t.Stop()
		tick = t.C()
	}
	for {
		select {
		case <-in.died:
			return "died"
		case <-in.stop:
			return "stop"
		case <-tick:
			// A paused app cannot answer: it is neither probed nor marked
			// unready, and a probe a freeze overlapped does not count.
			var frozen bool
			var gen int
			in.mu(func() { frozen, gen = in.frozen, in.freezes })
			if frozen {
				continue
			}
			ctx, cancel := in.b.timeoutCtx(in.b.hard, in.rs.spec.Readiness.Timeout)
			ok := in.readiness(ctx, in.target, in.rs.spec.Readiness.Timeout) == nil
			cancel()
			in.update(func() {
				if !in.frozen && in.freezes == gen {
					in.ready = ok
				}
			})
		}
	}
}

// shutdown drains a stopped instance that was ever ready, then stops
// (SIGTERM, SIGKILL after the grace) and removes its container. One
// that never was ready had no traffic: it is killed and removed at once.
func (in *instance) shutdown() {
	var everReady bool
	in.mu(func() { everReady = !in.timings.Ready.IsZero() })
	if !everReady {
		in.removeContainer(true)
		return
	}
	if err := in.unpause(in.b.hard); err != nil { // to see its SIGTERM
		in.b.opts.Logger.Warn("could not unpause a frozen container to stop it; it is killed", append(in.log(), "err", err)...)
	}
	in.drain()
	in.update(func() { in.state = phaseStopping })
	var cid string
	in.mu(func() { cid = in.container })
	grace := in.b.stopTimeout()
	if in.b.hard.Err() != nil {
		grace = 0
	}
	ctx, cancel := in.callCtx(time.Duration(grace) * time.Second)
	_, err := in.b.cli.ContainerStop(ctx, cid, client.ContainerStopOptions{Timeout: &grace})
	cancel()
	if err != nil && !cerrdefs.IsNotFound(err) {
		in.b.opts.Logger.Warn("ContainerStop failed; removing by force", append(in.log(), "err", err)...)
	}
	in.removeContainer(true)
}

// drain calls the host's DrainFunc and then the proxy's Drain, together
// bounded by the drain timeout (cut short by a hard stop).
func (in *instance) drain() {
	b := in.b
	var inst backend.Instance
	in.mu(func() { inst = in.instanceLocked() })
	ctx, cancel := b.timeoutCtx(b.hard, b.drainTimeout(in.rs.spec))
	defer cancel()
	if b.opts.Drain != nil {
		if err := b.opts.Drain(ctx, inst); err != nil {
			b.opts.Logger.Warn("drain hook failed; stopping anyway", append(in.log(), "err", err)...)
		}
	}
	if in.front != nil {
		if err := in.front.Proxy().Drain(ctx); err != nil {
			b.opts.Logger.Warn("proxy drain failed; stopping anyway", append(in.log(), "err", err)...)
		}
	}
}

// maxRemoveAttempts bounds the retries of a failed ContainerRemove; a
// container still left is removed by Close's sweep or the next New with
// the same identity.
const maxRemoveAttempts = 3

// removeContainer removes the instance's container (force kills a
// running one).
func (in *instance) removeContainer(force bool) {
	b := in.b
	var cid string
	in.mu(func() { cid = in.container })
	if cid == "" {
		return
	}
	var err error
	for range maxRemoveAttempts {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(b.hard), engineCallTimeout)
		_, err = b.cli.ContainerRemove(ctx, cid, client.ContainerRemoveOptions{Force: force})
		cancel()
		if err == nil || cerrdefs.IsNotFound(err) {
			return
		}
	}
	b.opts.Logger.Warn("could not remove container", append(in.log(), "container", shortID(cid), "err", err)...)
}

// collectCrash reads a dead container's exit code and last log lines,
// removes it, and returns the crash.
func (in *instance) collectCrash() *backend.Exit {
	b := in.b
	e := in.failed(-1, "container gone")
	var cid string
	in.mu(func() { cid = in.container })
	ctx, cancel := in.callCtx(0)
	res, err := b.cli.ContainerInspect(ctx, cid, client.ContainerInspectOptions{})
	cancel()
	var oom bool
	in.mu(func() { oom = in.oom })
	if err == nil && res.Container.State != nil {
		st := res.Container.State
		e.Code = st.ExitCode
		switch {
		case st.OOMKilled || oom:
			e.Reason = fmt.Sprintf("OOMKilled (memory limit %d bytes), exit code %d", in.resources().MemoryLimitBytes, st.ExitCode)
		case st.Error != "":
			e.Reason = fmt.Sprintf("exited with code %d: %s", st.ExitCode, st.Error)
		default:
			e.Reason = fmt.Sprintf("exited with code %d", st.ExitCode)
		}
	}
	in.captureLogs(e)
	in.removeContainer(true)
	b.opts.Logger.Warn("instance crashed", append(in.log(), "code", e.Code, "reason", e.Reason, "output", e.Output)...)
	return e
}

// captureLogs fills e.Output with the container's last log lines.
func (in *instance) captureLogs(e *backend.Exit) {
	var cid string
	in.mu(func() { cid = in.container })
	if cid == "" {
		return
	}
	lines, err := in.b.logTail(in.b.hard, cid, in.b.opts.LogTailLines)
	if err != nil {
		in.b.opts.Logger.Warn("could not read the crashed container's logs", append(in.log(), "err", err)...)
		return
	}
	e.Output = lines
}

// finish removes the gone instance from its revision, records its crash
// (if any) and lets the revision replace it.
func (in *instance) finish(crash *backend.Exit, up time.Duration) {
	in.endFollowing()
	if in.front != nil {
		in.front.Close() // closes in.ln too
	} else if in.ln != nil {
		_ = in.ln.Close()
	}
	b := in.b
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.byContainer, in.container)
	rs := in.rs
	if i := slices.Index(rs.insts, in); i >= 0 {
		rs.insts = slices.Delete(rs.insts, i, i+1)
	}
	if crash != nil && !in.draining && !rs.removing && !b.closed {
		in.slot.lastID = in.id
		b.crashed(rs, in.slot, *crash, up)
	}
	if !rs.removing && !b.closed {
		b.reconcile(rs) // publishes
	} else {
		b.publish(rs)
	}
	b.forgetIfEmpty(rs)
	b.opts.Logger.Info("instance gone", in.log()...)
}

// readyLog is the "instance ready" log line's attributes: the start's
// phases, relative to the decision to create it.
func (in *instance) readyLog() []any {
	var t startTimes
	in.mu(func() { t = in.timings })
	return append(in.log(),
		"create", t.Created.Sub(t.Begin), "start", t.Started.Sub(t.Created),
		"listen", t.Listening.Sub(t.Started), "ready", t.Ready.Sub(t.Listening), "total", t.Ready.Sub(t.Begin))
}
