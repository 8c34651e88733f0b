package docker

import (
	"context"
	"errors"
	"fmt"

	"github.com/moby/moby/client"

	"github.com/zeroscale/zeroscale/backend"
)

var _ backend.Freezer = (*Backend)(nil)

// phaseFrozen: paused by Freeze (or being drained to be), until Thaw.
const phaseFrozen phase = "Frozen"

// Freeze pauses every ready container of the revision
// (backend.Freezer): each instance is published Frozen, drained through
// Options.Drain (bounded by the drain timeout and ctx), then paused with
// ContainerPause (the engine's cgroup freezer: no CPU, memory kept). A
// paused container is neither probed nor restarted. Containers not
// ready yet are stopped; the desired scale becomes the number of frozen
// instances. An instance the engine could not pause is published
// serving again and its error returned.
func (b *Backend) Freeze(ctx context.Context, name string) error {
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
		case in.draining || in.slot.reserved:
		case in.frozen:
			frozen++
		case in.ready && in.container != "":
			in.frozen = true
			in.freezes++
			in.state = phaseFrozen
			frozen++
			todo = append(todo, in)
		}
	}
	rs.desired = frozen
	b.reconcile(rs) // stops the ones not ready; publishes
	b.mu.Unlock()

	var errs []error
	for _, in := range todo {
		in.drainFor(ctx)
		var cid string
		in.mu(func() {
			if in.frozen && !in.draining {
				cid = in.container
			}
		})
		if cid == "" {
			continue
		}
		cctx, cancel := in.callCtx(0)
		stop := context.AfterFunc(ctx, cancel)
		_, err := b.cli.ContainerPause(cctx, cid, client.ContainerPauseOptions{})
		stop()
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("docker: freeze %s: pause %s: %w: %w", name, in.id, backend.ErrTransient, err))
			in.update(func() { in.unfreezeLocked() })
			continue
		}
		in.mu(func() { in.paused = true })
	}
	b.opts.Logger.Info("revision frozen", "revision", name, "instances", frozen)
	return errors.Join(errs...)
}

// Thaw unpauses every frozen container of the revision and publishes it
// serving again before it returns (backend.Freezer).
func (b *Backend) Thaw(ctx context.Context, name string) error {
	b.mu.Lock()
	rs, err := b.lookup("thaw", name)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	var todo []*instance
	for _, in := range rs.insts {
		if in.frozen {
			todo = append(todo, in)
		}
	}
	b.mu.Unlock()
	var errs []error
	for _, in := range todo {
		if err := in.unpause(ctx); err != nil {
			errs = append(errs, fmt.Errorf("docker: thaw %s: %w", name, err))
		}
	}
	b.mu.Lock()
	for _, in := range todo {
		in.unfreezeLocked()
	}
	b.publish(rs)
	b.mu.Unlock()
	return errors.Join(errs...)
}

// unpause unpauses the instance's container if Freeze paused it.
func (in *instance) unpause(ctx context.Context) error {
	var cid string
	in.mu(func() {
		if in.paused {
			cid = in.container
		}
	})
	if cid == "" {
		return nil
	}
	cctx, cancel := in.callCtx(0)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if _, err := in.b.cli.ContainerUnpause(cctx, cid, client.ContainerUnpauseOptions{}); err != nil {
		return fmt.Errorf("unpause %s: %w: %w", in.id, backend.ErrTransient, err)
	}
	in.mu(func() { in.paused = false })
	return nil
}

// unfreezeLocked publishes in serving again (the caller publishes).
// Called with b.mu held.
func (in *instance) unfreezeLocked() {
	if !in.frozen {
		return
	}
	in.frozen = false
	if !in.draining {
		in.state = phaseRunning
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
	var inst backend.Instance
	in.mu(func() { inst = in.instanceLocked() })
	dctx, cancel := b.timeoutCtx(b.hard, b.drainTimeout(in.rs.spec))
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	if err := b.opts.Drain(dctx, inst); err != nil {
		b.opts.Logger.Warn("drain before freeze failed; freezing anyway", append(in.log(), "err", err)...)
	}
}
