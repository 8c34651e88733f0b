package docker

import (
	"context"
	"fmt"
	"slices"

	"github.com/zeroscale/zeroscale/backend"
)

var (
	_ backend.StatusReporter  = (*Backend)(nil)
	_ backend.InstanceLimiter = (*Backend)(nil)
	_ backend.Reserver        = (*Backend)(nil)
)

// Status returns the engine's view of a revision (ErrNotDeployed if it is
// not deployed): one entry per slot, its current instance or, after a
// crash, the crashed one in InstanceBackOff until its replacement
// starts, with the restarts so far, the last exit (exit code, reason,
// "OOMKilled", the container's last log lines) and when the replacement
// starts. AppAddress is the published port; Detail names the container.
// It asks the engine nothing, so ctx is not used.
func (b *Backend) Status(_ context.Context, name string) (backend.EngineStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, ok := b.revs[name]
	if !ok {
		return backend.EngineStatus{}, fmt.Errorf("docker: status %s: %w", name, backend.ErrNotDeployed)
	}
	st := backend.EngineStatus{
		Revision: name, Desired: rs.desired, Removing: rs.removing,
		Message: fmt.Sprintf("image %s (%s)", rs.spec.Image, shortID(trimDigest(rs.imageID))),
	}
	for _, in := range rs.insts {
		is := backend.InstanceStatus{
			Instance:   in.instanceLocked(),
			State:      in.state.public(),
			AppAddress: in.target,
			Restarts:   in.slot.restarts,
			LastExit:   cloneExit(in.slot.lastExit),
			Detail:     "container " + in.name,
		}
		if in.container != "" {
			is.Detail += " (" + shortID(in.container) + ")"
		}
		if is.LastExit != nil {
			is.Output = is.LastExit.Output
		}
		st.Instances = append(st.Instances, is)
	}
	for _, sl := range rs.pending {
		e := cloneExit(sl.lastExit)
		st.Instances = append(st.Instances, backend.InstanceStatus{
			Instance:    backend.Instance{ID: sl.lastID, Revision: name},
			State:       backend.InstanceBackOff,
			Restarts:    sl.restarts,
			LastExit:    e,
			NextRestart: sl.nextStart,
			Output:      e.Output,
		})
	}
	return st, nil
}

func cloneExit(e *backend.Exit) *backend.Exit {
	if e == nil {
		return nil
	}
	c := *e
	c.Output = slices.Clone(e.Output)
	return &c
}

func trimDigest(id string) string {
	if len(id) > 7 && id[:7] == "sha256:" {
		return id[7:]
	}
	return id
}

// public maps the backend's finer states to backend.InstanceState.
func (s phase) public() backend.InstanceState {
	switch s {
	case phaseCreating, phaseStarting:
		return backend.InstanceStarting
	case phaseRunning:
		return backend.InstanceRunning
	case phaseDraining:
		return backend.InstanceDraining
	case phaseFrozen:
		return backend.InstanceFrozen
	default:
		return backend.InstanceStopping
	}
}

// timings returns the start phases of a revision's current instances.
func (b *Backend) timings(name string) []startTimes {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, ok := b.revs[name]
	if !ok {
		return nil
	}
	out := make([]startTimes, 0, len(rs.insts))
	for _, in := range rs.insts {
		out = append(out, in.timings)
	}
	return out
}
