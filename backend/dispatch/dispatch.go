// Package dispatch is a backend.Backend that runs each revision on one of
// several engines, chosen by the revision's spec: for example revisions
// with an image on a Docker backend and those with only a command on the
// process backend, behind one Server, so the same manifest shape runs on
// either.
//
// An engine that is not available (no Docker Engine on this machine) is
// still listed, with the reason it is missing: Deploy of a revision that
// needs it fails with backend.ErrInvalidArgument saying which engine it
// needs and why it is not there, and the other engines keep working.
//
// The optional capabilities are delegated: Status to the revision's
// engine when it is a backend.StatusReporter; MaxInstances is the
// smallest cap of the engines that have one (the seam has one cap per
// Backend, not per revision); Shutdown and Close stop every engine.
package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// Engine is one engine and the revisions it runs.
type Engine struct {
	// Name says which engine it is in errors ("docker", "process").
	Name string
	// Runs reports whether the engine runs a revision with spec. The
	// first engine, in the order given to New, that runs a spec gets it.
	Runs func(spec revision.Spec) bool
	// Backend is the engine; nil when it is missing, and then Missing
	// says why.
	Backend backend.Backend
	Missing error
}

// HasImage and CommandOnly are the usual Engine.Runs: a container image
// (Docker, Kubernetes), or a local executable.
func HasImage(spec revision.Spec) bool    { return spec.Image != "" }
func CommandOnly(spec revision.Spec) bool { return spec.Image == "" && len(spec.Command) > 0 }

// Backend routes each revision to its engine. Create it with New.
type Backend struct {
	engines []Engine

	mu   sync.Mutex
	revs map[string]int // revision → index in engines
}

var (
	_ backend.Backend         = (*Backend)(nil)
	_ backend.StatusReporter  = (*Backend)(nil)
	_ backend.InstanceLimiter = (*Backend)(nil)
	_ io.Closer               = (*Backend)(nil)
)

// New returns a Backend over engines, tried in order. Each needs a
// unique Name, Runs, and a Backend or the Missing reason.
func New(engines ...Engine) (*Backend, error) {
	if len(engines) == 0 {
		return nil, fmt.Errorf("dispatch: no engine: %w", backend.ErrInvalidArgument)
	}
	seen := map[string]bool{}
	for i, e := range engines {
		switch {
		case e.Name == "" || seen[e.Name]:
			return nil, fmt.Errorf("dispatch: engine %d: Name %q must be set and unique: %w", i, e.Name, backend.ErrInvalidArgument)
		case e.Runs == nil:
			return nil, fmt.Errorf("dispatch: engine %s: Runs must be set: %w", e.Name, backend.ErrInvalidArgument)
		case e.Backend == nil && e.Missing == nil:
			return nil, fmt.Errorf("dispatch: engine %s: Backend or Missing must be set: %w", e.Name, backend.ErrInvalidArgument)
		}
		seen[e.Name] = true
	}
	return &Backend{engines: engines, revs: map[string]int{}}, nil
}

// Deploy deploys rev on the first engine that runs its spec (on the
// engine it was deployed on, when it was).
func (b *Backend) Deploy(ctx context.Context, rev revision.Revision) error {
	name := rev.Name()
	b.mu.Lock()
	i, ok := b.revs[name]
	b.mu.Unlock()
	if !ok {
		spec := rev.Spec()
		i = -1
		for j, e := range b.engines {
			if e.Runs(spec) {
				i = j
				break
			}
		}
		if i < 0 {
			return fmt.Errorf("dispatch: revision %s (image %q, command %q): none of the engines (%s) runs it: %w",
				name, spec.Image, spec.Command, b.names(), backend.ErrInvalidArgument)
		}
	}
	e := b.engines[i]
	if e.Backend == nil {
		return fmt.Errorf("revision %s needs the %s engine, which is not available: %v: %w", name, e.Name, e.Missing, backend.ErrInvalidArgument)
	}
	if err := e.Backend.Deploy(ctx, rev); err != nil {
		return err
	}
	b.mu.Lock()
	b.revs[name] = i
	b.mu.Unlock()
	return nil
}

func (b *Backend) names() string {
	var n []string
	for _, e := range b.engines {
		n = append(n, e.Name)
	}
	return strings.Join(n, ", ")
}

// engine returns the engine of a deployed revision.
func (b *Backend) engine(name string) (backend.Backend, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	i, ok := b.revs[name]
	if !ok {
		return nil, fmt.Errorf("dispatch: revision %s: %w", name, backend.ErrNotDeployed)
	}
	return b.engines[i].Backend, nil
}

// Scale scales the revision on its engine.
func (b *Backend) Scale(ctx context.Context, name string, n int) error {
	e, err := b.engine(name)
	if err != nil {
		return err
	}
	return e.Scale(ctx, name, n)
}

// Watch watches the revision on its engine.
func (b *Backend) Watch(ctx context.Context, name string) (<-chan []backend.Instance, error) {
	e, err := b.engine(name)
	if err != nil {
		return nil, err
	}
	return e.Watch(ctx, name)
}

// Remove removes the revision from its engine and forgets where it ran.
func (b *Backend) Remove(ctx context.Context, name string) error {
	e, err := b.engine(name)
	if err != nil {
		return err
	}
	err = e.Remove(ctx, name)
	if err == nil || errors.Is(err, backend.ErrNotDeployed) {
		b.mu.Lock()
		delete(b.revs, name)
		b.mu.Unlock()
	}
	return err
}

// Status is the revision's engine's, when that engine reports status;
// otherwise an error wrapping errors.ErrUnsupported.
func (b *Backend) Status(ctx context.Context, name string) (backend.EngineStatus, error) {
	e, err := b.engine(name)
	if err != nil {
		return backend.EngineStatus{}, err
	}
	sr, ok := e.(backend.StatusReporter)
	if !ok {
		return backend.EngineStatus{}, fmt.Errorf("dispatch: the engine of %s reports no status: %w", name, errors.ErrUnsupported)
	}
	return sr.Status(ctx, name)
}

// MaxInstances is the smallest non-zero cap of the engines (0: none has
// one).
func (b *Backend) MaxInstances() int {
	limit := 0
	for _, e := range b.engines {
		if l, ok := e.Backend.(backend.InstanceLimiter); ok {
			if m := l.MaxInstances(); m > 0 && (limit == 0 || m < limit) {
				limit = m
			}
		}
	}
	return limit
}

// Shutdown stops every engine at once (with its Shutdown(ctx), else its
// Close) and returns their errors joined.
func (b *Backend) Shutdown(ctx context.Context) error {
	var wg sync.WaitGroup
	errs := make([]error, len(b.engines))
	for i, e := range b.engines {
		wg.Go(func() {
			switch c := e.Backend.(type) {
			case interface{ Shutdown(context.Context) error }:
				errs[i] = c.Shutdown(ctx)
			case io.Closer:
				errs[i] = c.Close()
			}
			if errs[i] != nil {
				errs[i] = fmt.Errorf("dispatch: stop %s: %w", e.Name, errs[i])
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close is Shutdown without a deadline.
func (b *Backend) Close() error { return b.Shutdown(context.Background()) }
