package process

import (
	"context"
	"fmt"

	"github.com/zeroscale/zeroscale/backend"
)

var _ backend.Freezer = (*Backend)(nil)

// Freeze suspends every ready instance of the revision
// (backend.Freezer): each is published Frozen, drained through
// Options.Drain (bounded by the drain timeout and ctx), and then its
// whole process group is stopped with SIGSTOP, so the app and every
// child it started use no CPU and keep their memory, sockets and
// state; it returns once the kernel shows each one stopped (SIGSTOP
// takes effect asynchronously; see waitStopped). Instances not ready yet
// are stopped; the desired scale becomes the number of frozen instances.
//
// Why signals and not the cgroup v2 freezer: the Backend does not put
// instances in cgroups of their own (it would need a delegated
// subtree, which an unprivileged host rarely has), and a process group
// is what it already supervises and kills. A child that leaves the
// group (setsid) escapes the freeze, as it escapes the stop.
//
// While frozen, readiness probes are not sent (Spec.Readiness.Period)
// and a probe that was in flight when the group stopped is ignored, so
// a frozen instance is never marked unready or restarted; it cannot
// crash, and a stop (Scale, Remove, Close) resumes it to let it see
// its SIGTERM. Not supported on systems without process groups
// (ErrInvalidArgument).
func (b *Backend) Freeze(ctx context.Context, name string) error {
	if !canFreeze {
		return fmt.Errorf("process: freeze %s: %w: not supported on this system", name, backend.ErrInvalidArgument)
	}
	b.mu.Lock()
	rs, err := b.lookup("freeze", name)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	var todo []*instance
	frozen := 0
	for _, in := range rs.insts {
		switch {
		case in.draining || in.reserved:
		case in.frozen:
			frozen++
		case in.ready && in.live && in.pid != 0:
			in.frozen = true
			in.freezes++
			in.state = backend.InstanceFrozen
			frozen++
			todo = append(todo, in)
		}
	}
	rs.desired = frozen
	b.reconcile(rs) // stops the ones not ready; publishes
	b.mu.Unlock()

	for _, in := range todo {
		in.drainFor(ctx)
		b.mu.Lock()
		pid := 0
		if in.frozen && !in.draining && in.pid != 0 {
			if err := stopGroup(in.pid); err != nil {
				b.opts.Logger.Warn("SIGSTOP failed", append(in.log(), "err", err)...)
			}
			in.suspended, pid = true, in.pid
		}
		b.mu.Unlock()
		if pid != 0 && !waitStopped(pid) {
			b.opts.Logger.Warn("instance not seen stopped after SIGSTOP", append(in.log(), "pid", pid, "waited", maxStopWait)...)
		}
	}
	b.opts.Logger.Info("revision frozen", "revision", name, "instances", frozen)
	return ctx.Err()
}

// Thaw resumes every frozen instance of the revision with SIGCONT to its
// process group and publishes it serving again before it returns
// (backend.Freezer).
func (b *Backend) Thaw(_ context.Context, name string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, err := b.lookup("thaw", name)
	if err != nil {
		return err
	}
	n := 0
	for _, in := range rs.insts {
		if in.frozen {
			in.thawLocked()
			n++
		}
	}
	b.publish(rs)
	if n > 0 {
		b.opts.Logger.Info("revision thawed", "revision", name, "instances", n)
	}
	return nil
}

// thawLocked resumes in if it is frozen. Called with b.mu held (a
// signal is a few microseconds).
func (in *instance) thawLocked() {
	if !in.frozen {
		return
	}
	if in.suspended && in.pid != 0 {
		if err := contGroup(in.pid); err != nil {
			in.b.opts.Logger.Warn("SIGCONT failed", append(in.log(), "err", err)...)
		}
	}
	in.frozen, in.suspended = false, false
	if !in.draining {
		in.state = backend.InstanceRunning
	}
}

// drainFor calls the host's DrainFunc before a freeze, bounded by the
// drain timeout, ctx and a hard stop. The proxy's own Drain is not
// called: it would refuse requests for good, and the instance serves
// again after its thaw.
func (in *instance) drainFor(ctx context.Context) {
	b := in.b
	if b.opts.Drain == nil {
		return
	}
	b.mu.Lock()
	inst := in.instanceLocked()
	b.mu.Unlock()
	dctx, cancel := b.timeoutCtx(b.hard, b.drainTimeout(in.rs.spec))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := b.opts.Drain(dctx, inst); err != nil {
		b.opts.Logger.Warn("drain before freeze failed; freezing anyway", append(in.log(), "err", err)...)
	}
}
