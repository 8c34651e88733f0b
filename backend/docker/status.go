package docker

import (
	"fmt"
	"slices"
	"time"

	"github.com/zeroscale/zeroscale/backend"
)

// InstanceStatus is one instance as Status reports it.
type InstanceStatus struct {
	backend.Instance
	State State
	// Container is the container's ID ("" until created), Name its name.
	Container string
	Name      string
	// Published is where the app's port is published (127.0.0.1:port),
	// "" until started; it differs from Address when a proxy fronts it.
	Published string
	Timings   Timings
}

// RevisionStatus is the state of one revision's instances.
type RevisionStatus struct {
	Revision string
	// Image is Spec.Image, ImageID what it resolved to at Deploy.
	Image   string
	ImageID string
	// Desired is the last Scale target (0 while being removed).
	Desired   int
	Removing  bool
	Instances []InstanceStatus
	// Restarts counts the instances that replaced crashed ones.
	Restarts int
	// LastExit is the last crash, nil if none crashed.
	LastExit *Exit
	// NextStart, when in the future, is when the next replacement of a
	// crashed instance may start: the revision is in crash-loop backoff.
	NextStart time.Time
}

// CrashLooping reports whether replacements wait for a crash backoff
// at now.
func (s RevisionStatus) CrashLooping(now time.Time) bool {
	return s.LastExit != nil && now.Before(s.NextStart)
}

// Status returns the state of a revision's instances (ErrNotFound if it
// is not deployed).
func (b *Backend) Status(name string) (RevisionStatus, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	rs, ok := b.revs[name]
	if !ok {
		return RevisionStatus{}, fmt.Errorf("docker: status %s: %w", name, backend.ErrNotFound)
	}
	st := RevisionStatus{
		Revision: name, Image: rs.spec.Image, ImageID: rs.imageID,
		Desired: rs.desired, Removing: rs.removing,
		Restarts: rs.restarts, NextStart: rs.nextStart,
	}
	if rs.lastExit != nil {
		e := *rs.lastExit
		e.Output = slices.Clone(e.Output)
		st.LastExit = &e
	}
	for _, in := range rs.insts {
		st.Instances = append(st.Instances, InstanceStatus{
			Instance: in.instanceLocked(), State: in.state,
			Container: in.container, Name: in.name, Published: in.target, Timings: in.timings,
		})
	}
	return st, nil
}
