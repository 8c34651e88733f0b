package fake

import (
	"context"
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/backend"
)

// FailScale makes the next n Scale calls that would otherwise succeed
// fail with an error wrapping err (typically backend.ErrTransient, or
// backend.ErrInvalidArgument for a permanent failure) without changing
// anything. n ≤ 0 cancels pending failures.
func (b *Backend) FailScale(n int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.scaleFails, b.scaleErr = max(n, 0), err
}

// CrashStarts makes the next n instances started for the named revision
// crash when their start delay passes instead of becoming ready: they
// leave the watch without ever being ready, and the engine starts
// replacements to keep the desired scale. n ≤ 0 cancels pending crashes.
func (b *Backend) CrashStarts(revision string, n int) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.lookup(revision)
	if err != nil {
		return fmt.Errorf("fake: crash starts of %s: %w", revision, err)
	}
	r.crashes = max(n, 0)
	return nil
}

// Kill makes the instance die while serving: its server closes at once,
// cutting requests in flight, it leaves the watch without draining, and
// the engine starts a replacement to keep the desired scale.
func (b *Backend) Kill(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	in, err := b.instance(id)
	if err != nil {
		return fmt.Errorf("fake: kill: %w", err)
	}
	b.log.Debug("fake: instance killed", "id", id)
	b.kill(in)
	return b.settle(in.rev)
}

// Fail makes the instance unhealthy, as a failing liveness probe would:
// it stops being ready at once (it keeps its socket and handler), and
// restartAfter later on the clock it is killed without draining and
// replaced to keep the desired scale. restartAfter ≤ 0 kills it now, as
// Kill does.
func (b *Backend) Fail(id string, restartAfter time.Duration) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	in, err := b.serving("fail", id)
	if err != nil {
		return err
	}
	b.log.Debug("fake: instance failing", "id", id, "restartAfter", restartAfter)
	if restartAfter <= 0 {
		b.kill(in)
		return b.settle(in.rev)
	}
	if in.timer != nil {
		in.timer.Stop() // a pending start: it will not become ready now
	}
	in.Ready = false
	in.timer = b.clock.AfterFunc(restartAfter, b.handOff(func() { b.restart(in) }))
	b.publish(in.rev)
	return nil
}

// restart kills in, failed by Fail, and replaces it.
func (b *Backend) restart(in *instance) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || in.stopping || b.byID[in.ID] != in {
		return
	}
	b.log.Debug("fake: failed instance restarted", "id", in.ID)
	b.kill(in)
	_ = b.settle(in.rev) // a failed restart is retried by the next change
}

// SetReady flips the instance's readiness, as a failing and recovering
// readiness probe would: a not-ready instance keeps serving and keeps
// counting toward the desired scale, but layers above send it nothing.
// An instance still starting becomes ready now (its pending start is
// cancelled, as is a pending restart after Fail); one set not ready
// before it ever was ready is stopped without draining.
func (b *Backend) SetReady(id string, ready bool) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	in, err := b.serving("set ready", id)
	if err != nil {
		return err
	}
	if in.timer != nil && ready {
		in.timer.Stop()
		in.timer = nil
	}
	in.Ready = ready
	in.everReady = in.everReady || ready
	b.publish(in.rev)
	return nil
}

// SetDrainDelay changes Options.DrainDelay (a slow drain) for instances
// whose stop begins after the call. Negative means 0.
func (b *Backend) SetDrainDelay(d time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drainDelay = max(d, 0)
}

// Instances returns the current snapshot of the named revision, as its
// watch would show it.
func (b *Backend) Instances(revision string) ([]backend.Instance, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.deployed("instances of", revision)
	if err != nil {
		return nil, err
	}
	return r.watch.Current(), nil
}

// Desired returns the scale last set for the named revision.
func (b *Backend) Desired(revision string) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.lookup(revision)
	if err != nil {
		return 0, fmt.Errorf("fake: desired scale of %s: %w", revision, err)
	}
	return r.desired, nil
}

// serving returns the live instance id for op, unless it is stopping.
// b.mu must be held.
func (b *Backend) serving(op, id string) (*instance, error) {
	in, err := b.instance(id)
	if err != nil {
		return nil, fmt.Errorf("fake: %s: %w", op, err)
	}
	if in.stopping {
		return nil, fmt.Errorf("fake: %s: instance %s is stopping", op, id)
	}
	return in, nil
}

// instance returns the live instance id. b.mu must be held.
func (b *Backend) instance(id string) (*instance, error) {
	if b.closed {
		return nil, ErrClosed
	}
	in, ok := b.byID[id]
	if !ok {
		return nil, fmt.Errorf("instance %s: %w", id, ErrNoInstance)
	}
	return in, nil
}

// MaxInstances is Options.MaxInstances: Scale above it fails. It
// implements backend.InstanceLimiter.
func (b *Backend) MaxInstances() int { return b.opts.MaxInstances }

// Status returns the engine's view of the named revision: its desired
// scale and every instance, Starting, Running or Draining (the fake
// restarts nothing, so it has no BackOff). It implements
// backend.StatusReporter.
func (b *Backend) Status(_ context.Context, revision string) (backend.EngineStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.deployed("status of", revision)
	if err != nil {
		return backend.EngineStatus{}, err
	}
	st := backend.EngineStatus{Revision: revision, Desired: r.desired, Removing: r.removing}
	for _, in := range r.watch.Current() {
		state := backend.InstanceStarting
		switch {
		case in.Draining:
			state = backend.InstanceDraining
		case in.Frozen:
			state = backend.InstanceFrozen
		case in.Ready:
			state = backend.InstanceRunning
		}
		st.Instances = append(st.Instances, backend.InstanceStatus{Instance: in, State: state, AppAddress: in.Address})
	}
	return st, nil
}
