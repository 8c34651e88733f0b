package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/engineopt"
	"github.com/zeroscale/zeroscale/revision"
)

// errClosed is wrapped by every call on a closed Backend.
var errClosed = errors.New("process backend closed")

// ErrClosed is returned (wrapping backend.ErrInvalidArgument, as the call
// can never succeed) by every method called after Close.
var ErrClosed = fmt.Errorf("%w: %w", backend.ErrInvalidArgument, errClosed)

// Backend runs each instance of a revision as a local OS process. It
// implements backend.Backend; see the package documentation for the
// lifecycle. Create it with New and stop it with Close.
type Backend struct {
	opts  Options
	spawn *spawner
	guard *guard // kills the instances' process groups if the host dies
	host  string // this host's hostEnv marker

	outMu sync.Mutex // serialises writes to opts.Output

	// hard is cancelled when Close's ctx ends: drains and stop grace
	// periods are cut short and every process group is SIGKILLed.
	hard       context.Context
	hardCancel context.CancelFunc

	wg sync.WaitGroup // every goroutine the Backend starts

	mu     sync.Mutex
	revs   map[string]*revState
	ports  map[int]struct{} // app ports reserved by live instances
	closed bool
	nextID uint64
}

// revState is one deployed revision. Guarded by Backend.mu.
type revState struct {
	rev      revision.Revision
	spec     revision.Spec
	path     string // resolved Command[0]
	desired  int
	reserved int         // desired reserved instances (backend.Reserver), 0 or 1
	insts    []*instance // in creation order
	bc       backend.Broadcaster
	removing bool
	gone     chan struct{} // closed once removed
}

// New returns a Backend configured by opts (see Options for defaults). It
// fails if an option is out of range.
func New(opts Options) (*Backend, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", backend.ErrInvalidArgument, err)
	}
	// What a host that died before us left behind would otherwise live
	// on unsupervised; a restarted host removes it.
	removeLeftovers(o.Logger)
	hard, cancel := context.WithCancel(context.Background())
	return &Backend{
		opts:       o,
		spawn:      newSpawner(),
		guard:      newGuard(o.Logger),
		host:       hostID(),
		hard:       hard,
		hardCancel: cancel,
		revs:       make(map[string]*revState),
		ports:      make(map[int]struct{}),
	}, nil
}

var (
	_ backend.Backend         = (*Backend)(nil)
	_ backend.StatusReporter  = (*Backend)(nil)
	_ backend.InstanceLimiter = (*Backend)(nil)
	_ backend.Reserver        = (*Backend)(nil)
	_ io.Closer               = (*Backend)(nil)
)

// Deploy makes rev runnable: it checks that rev's Command resolves to an
// executable (looked up in the host's PATH, or relative to WorkingDir
// when it contains a path separator) and that WorkingDir is a directory.
// It starts nothing. Deploying the same name with the same spec again is a
// no-op; with a different spec it fails with ErrInvalidArgument.
func (b *Backend) Deploy(ctx context.Context, rev revision.Revision) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("process: deploy %s: %w: %w", rev.Name(), backend.ErrTransient, err)
	}
	if rev.IsZero() {
		return fmt.Errorf("process: deploy: %w: zero Revision (build it with revision.New)", backend.ErrInvalidArgument)
	}
	spec := rev.Spec()
	path, err := resolveCommand(spec)
	if err != nil {
		return fmt.Errorf("process: deploy %s: %w: %w", rev.Name(), backend.ErrInvalidArgument, err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("process: deploy %s: %w", rev.Name(), ErrClosed)
	}
	if rs, ok := b.revs[rev.Name()]; ok {
		switch {
		case rs.removing:
			return fmt.Errorf("process: deploy %s: %w: the revision is being removed; retry once Remove returns",
				rev.Name(), backend.ErrTransient)
		case rs.rev.SpecHash() != rev.SpecHash():
			return fmt.Errorf("process: deploy %s: %w: already deployed with a different spec (hash %.12s, got %.12s)",
				rev.Name(), backend.ErrInvalidArgument, rs.rev.SpecHash(), rev.SpecHash())
		}
		return nil
	}
	b.revs[rev.Name()] = &revState{rev: rev, spec: spec, path: path, gone: make(chan struct{})}
	b.opts.Logger.Info("revision deployed", "revision", rev.Name(), "command", path)
	return nil
}

// resolveCommand checks spec can run as a local process and returns the
// executable's path.
func resolveCommand(spec revision.Spec) (string, error) {
	if len(spec.Command) == 0 || spec.Command[0] == "" {
		return "", fmt.Errorf("Spec.Command = %q: the process backend needs a command to run (Spec.Image %q is not runnable here)",
			spec.Command, spec.Image)
	}
	if spec.WorkingDir != "" {
		fi, err := os.Stat(spec.WorkingDir)
		if err != nil {
			return "", fmt.Errorf("Spec.WorkingDir = %q: %w", spec.WorkingDir, err)
		}
		if !fi.IsDir() {
			return "", fmt.Errorf("Spec.WorkingDir = %q: not a directory", spec.WorkingDir)
		}
	}
	name := spec.Command[0]
	if strings.ContainsRune(name, filepath.Separator) && !filepath.IsAbs(name) && spec.WorkingDir != "" {
		name = filepath.Join(spec.WorkingDir, name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("Spec.Command[0] = %q: %w", spec.Command[0], err)
	}
	if !filepath.IsAbs(path) {
		// Pin it: the instance runs in WorkingDir, not in our directory.
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
	}
	return path, nil
}

// lookup returns the revision name, or ErrNotDeployed if it is unknown or
// being removed. Called with b.mu held.
func (b *Backend) lookup(op, name string) (*revState, error) {
	if b.closed {
		return nil, fmt.Errorf("process: %s %s: %w", op, name, ErrClosed)
	}
	rs, ok := b.revs[name]
	if !ok || rs.removing {
		return nil, fmt.Errorf("process: %s %s: %w", op, name, backend.ErrNotDeployed)
	}
	return rs, nil
}

// Scale sets the desired number of instances of a revision and returns;
// instances start (in parallel) or drain and stop in the background.
// n must be in [0, Options.MaxInstances].
func (b *Backend) Scale(ctx context.Context, name string, n int) error {
	if n < 0 || n > b.opts.MaxInstances {
		return fmt.Errorf("process: scale %s: %w: n = %d, want 0–%d (Options.MaxInstances)",
			name, backend.ErrInvalidArgument, n, b.opts.MaxInstances)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("process: scale %s: %w: %w", name, backend.ErrTransient, err)
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
// of each kind number rs.desired (standard) and rs.reserved. Victims are
// chosen not-ready first, then youngest first. Called with b.mu held.
func (b *Backend) reconcile(rs *revState) {
	b.reconcileKind(rs, false, rs.desired)
	b.reconcileKind(rs, true, rs.reserved)
	b.publish(rs)
}

// reconcileKind is reconcile of one kind; the caller publishes.
func (b *Backend) reconcileKind(rs *revState, reserved bool, want int) {
	live := make([]*instance, 0, len(rs.insts))
	for _, in := range rs.insts {
		if !in.draining && in.reserved == reserved {
			live = append(live, in)
		}
	}
	now := b.opts.Clock.Now()
	for i := len(live); i < want; i++ {
		b.nextID++
		id := fmt.Sprintf("%s-%d", rs.rev.Name(), b.nextID)
		if reserved {
			id = fmt.Sprintf("%s-reserved-%d", rs.rev.Name(), b.nextID)
		}
		in := newInstance(b, rs, id, now)
		in.reserved = reserved
		rs.insts = append(rs.insts, in)
		b.wg.Add(1)
		go in.run()
	}
	if excess := len(live) - want; excess > 0 {
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
// revision, 0 or 1 (backend.Reserver). A reserved instance is a process
// like a standard one whose whole process group runs at the lower CPU
// priority of the revision's profile (revision.ReservedProfile.Nice,
// setpriority(PRIO_PGRP) right after the exec); the profile's CPU and
// memory are not applied to processes.
func (b *Backend) ScaleReserved(ctx context.Context, name string, n int) error {
	if err := engineopt.ReservedCount("process", name, n); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("process: scale reserved %s: %w: %w", name, backend.ErrTransient, err)
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

// publish sends rs's current snapshot to its watchers. Called with b.mu
// held, so snapshots go out in the order the changes happened.
func (b *Backend) publish(rs *revState) {
	snap := make([]backend.Instance, 0, len(rs.insts))
	for _, in := range rs.insts {
		if in.live {
			snap = append(snap, in.instanceLocked())
		}
	}
	rs.bc.Publish(snap)
}

// Remove stops every instance of the revision (draining each first),
// forgets it, and returns once that is done or ctx ends (the stopping then
// goes on in the background; the error wraps backend.ErrTransient and
// ctx's error). Removing a revision that is being removed waits for the
// same removal.
func (b *Backend) Remove(ctx context.Context, name string) error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return fmt.Errorf("process: remove %s: %w", name, ErrClosed)
	}
	rs, ok := b.revs[name]
	if !ok {
		b.mu.Unlock()
		return fmt.Errorf("process: remove %s: %w", name, backend.ErrNotDeployed)
	}
	b.beginRemove(rs)
	b.mu.Unlock()
	select {
	case <-rs.gone:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("process: remove %s: %w: still stopping: %w", name, backend.ErrTransient, ctx.Err())
	}
}

// beginRemove starts stopping every instance of rs. Called with b.mu held.
func (b *Backend) beginRemove(rs *revState) {
	if rs.removing {
		return
	}
	rs.removing = true
	rs.desired, rs.reserved = 0, 0
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

// Close is Shutdown without a deadline of its own: drains and stop
// grace periods are bounded by Options.DrainTimeout and StopGrace. It
// implements io.Closer.
func (b *Backend) Close() error { return b.Shutdown(context.Background()) }

// Shutdown stops every instance of every revision (draining each first,
// as Remove does) and returns once all of them exited and every goroutine
// of the Backend ended. If ctx ends first, drains and grace periods are
// cut short, every process group is SIGKILLed, Shutdown still waits for
// the processes to be reaped, and it returns ctx's error. Every later
// call on b fails with ErrClosed; Shutdown and Close may be called again.
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

	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = fmt.Errorf("process: close: instances killed: %w", ctx.Err())
		b.hardCancel()
		<-done
	}
	b.hardCancel()
	if first {
		b.spawn.stop()
		b.guard.close()
	}
	return err
}

// writeLine sends one output line to Options.Output and OutputFunc.
func (b *Backend) writeLine(rev, id, line string) {
	if f := b.opts.OutputFunc; f != nil {
		f(rev, id, line)
	}
	w := b.opts.Output
	if w == nil {
		return
	}
	b.outMu.Lock()
	defer b.outMu.Unlock()
	_, _ = io.WriteString(w, rev+"/"+id+": "+line+"\n")
}

// Status returns the state of a revision's instances (ErrNotDeployed if it
// is not deployed), crash loops included: it implements
// backend.StatusReporter. Each InstanceStatus's Detail is "pid N" while
// a process runs.
func (b *Backend) Status(_ context.Context, name string) (backend.EngineStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, ok := b.revs[name]
	if !ok {
		return backend.EngineStatus{}, fmt.Errorf("process: status %s: %w", name, backend.ErrNotDeployed)
	}
	st := backend.EngineStatus{Revision: name, Desired: rs.desired, Removing: rs.removing}
	for _, in := range rs.insts {
		st.Instances = append(st.Instances, in.statusLocked())
	}
	return st, nil
}

// MaxInstances is Options.MaxInstances: Scale above it fails. It
// implements backend.InstanceLimiter.
func (b *Backend) MaxInstances() int { return b.opts.MaxInstances }

// drainTimeout is how long rs's instances get to drain.
func (b *Backend) drainTimeout(spec revision.Spec) time.Duration {
	if b.opts.DrainTimeout > 0 {
		return b.opts.DrainTimeout
	}
	return spec.Timeouts.Request
}
