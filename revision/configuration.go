package revision

import (
	"crypto/md5"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"k8s.io/utils/clock"
)

// State is what is known about a revision's health: whether it has ever
// become ready, or failed.
type State int

// Revision states.
const (
	StateUnknown State = iota // stamped, not yet ready or failed
	StateReady                // MarkReady was called
	StateFailed               // MarkFailed was called
)

func (s State) String() string {
	switch s {
	case StateReady:
		return "Ready"
	case StateFailed:
		return "Failed"
	default:
		return "Unknown"
	}
}

// Configuration holds the latest template of a service and stamps a new
// Revision each time it really changes, as Knative's Configuration does.
// It is safe for concurrent use. The zero value is not usable; call
// NewConfiguration.
type Configuration struct {
	name  string
	clock clock.PassiveClock

	mu            sync.RWMutex
	generation    int64
	revisions     []Revision     // creation order
	index         map[string]int // name -> position in revisions
	states        []revState     // parallel to revisions
	latestCreated int            // position of the current template's revision, -1 = none
	latestReady   int            // -1 = none
}

type revState struct {
	state  State
	reason string
}

// NewConfiguration returns an empty Configuration named name (a DNS-1035
// label). A nil clock means the real clock; it stamps Revision.Created.
func NewConfiguration(name string, clk clock.PassiveClock) (*Configuration, error) {
	if !isDNS1035Label(name) {
		return nil, &FieldError{Field: "Configuration.Name", Value: name, Allowed: dns1035Allowed}
	}
	if clk == nil {
		clk = clock.RealClock{}
	}
	return &Configuration{name: name, clock: clk, index: map[string]int{}, latestCreated: -1, latestReady: -1}, nil
}

// Name is the Configuration's name.
func (c *Configuration) Name() string { return c.name }

// Generation counts the revisions stamped so far (0 before the first
// Update). Stamped revision names carry it: <name>-00003 is generation 3.
func (c *Configuration) Generation() int64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.generation
}

// Update sets the Configuration's template to spec and returns the
// revision that runs it. created reports whether a new revision was
// stamped.
//
// With revisionName "", a new revision named <name>-<generation> (5
// digits, e.g. hello-00002; more from generation 100000) is stamped only
// when spec's content hash (Spec.Hash) differs from the current
// template's; otherwise Update is a no-op returning the current revision.
// Names longer than 63 characters are shortened as Knative's
// kmeta.ChildName does (a prefix of name plus its MD5).
//
// A non-empty revisionName brings your own name, under Knative's rules:
// it must be a DNS-1035 label starting with "<name>-", and it must change
// whenever the template changes. Reusing an existing revision's name with
// a different spec fails with ErrNameInUse; with the same spec it is a
// no-op that makes that revision the current one again (a roll-back by
// name). A new name with an unchanged spec stamps a new revision, as in
// Knative, where the name is part of the template.
//
// Update fails without changing anything if spec is invalid
// (Spec.Validate) or the name is taken.
func (c *Configuration) Update(spec Spec, revisionName string) (rev Revision, created bool, err error) {
	// One deep copy with defaults, validated and hashed once, becomes the
	// new revision's spec.
	spec = spec.WithDefaults()
	if err := spec.validate(); err != nil {
		return Revision{}, false, fmt.Errorf("configuration %s: %w", c.name, err)
	}
	hash := spec.hash()
	if revisionName != "" && (!isDNS1035Label(revisionName) || !strings.HasPrefix(revisionName, c.name+"-")) {
		return Revision{}, false, &FieldError{Field: "revision name", Value: revisionName,
			Allowed: fmt.Sprintf("%s, starting with %q", dns1035Allowed, c.name+"-")}
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if revisionName == "" {
		if c.latestCreated >= 0 && c.revisions[c.latestCreated].hash == hash {
			return c.revisions[c.latestCreated], false, nil
		}
		revisionName = childName(c.name, fmt.Sprintf("-%05d", c.generation+1))
	}
	if i, ok := c.index[revisionName]; ok {
		if c.revisions[i].hash != hash {
			return Revision{}, false, fmt.Errorf("%w: %s already runs a different spec; a changed template needs a new revision name",
				ErrNameInUse, revisionName)
		}
		c.latestCreated = i
		if c.states[i].state == StateReady {
			c.latestReady = i
		}
		return c.revisions[i], false, nil
	}
	c.generation++
	rev = newRevision(c.name, revisionName, c.generation, spec, hash, c.clock.Now())
	c.index[revisionName] = len(c.revisions)
	c.latestCreated = len(c.revisions)
	c.revisions = append(c.revisions, rev)
	c.states = append(c.states, revState{})
	return rev, true, nil
}

// childName is Knative's kmeta.ChildName: parent+suffix, or, when that is
// longer than 63 characters, a prefix of parent, parent's MD5 in hex and
// suffix, 63 characters in all.
func childName(parent, suffix string) string {
	const longest, md5Len = 63, 32
	if len(parent)+len(suffix) <= longest {
		return parent + suffix
	}
	head := longest - md5Len - len(suffix)
	return fmt.Sprintf("%s%x%s", parent[:head], md5.Sum([]byte(parent)), suffix)
}

// LatestCreated returns the revision of the current template: the one the
// last successful Update stamped or returned. ok is false before the
// first Update.
func (c *Configuration) LatestCreated() (rev Revision, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.at(c.latestCreated)
}

// LatestReady returns the newest revision (highest generation) marked
// ready. It only moves forward: a newer revision that fails leaves it
// where it was, and so does a ready revision that later fails. The one
// exception is a roll-back by name (see Update) to a ready revision,
// which becomes latest ready again.
func (c *Configuration) LatestReady() (rev Revision, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.at(c.latestReady)
}

func (c *Configuration) at(i int) (Revision, bool) {
	if i < 0 {
		return Revision{}, false
	}
	return c.revisions[i], true
}

// Revision returns the revision called name.
func (c *Configuration) Revision(name string) (rev Revision, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.index[name]
	if !ok {
		return Revision{}, false
	}
	return c.revisions[i], true
}

// Revisions returns every revision stamped so far, oldest first, in a new
// slice.
func (c *Configuration) Revisions() []Revision {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return append([]Revision(nil), c.revisions...)
}

// State returns the state of the revision called name and, when failed,
// the reason given to MarkFailed. The error wraps ErrNotFound for an
// unknown name.
func (c *Configuration) State(name string) (State, string, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, ok := c.index[name]
	if !ok {
		return StateUnknown, "", c.notFound(name)
	}
	return c.states[i].state, c.states[i].reason, nil
}

// MarkReady records that the revision called name became ready (its
// first instance passed readiness). It becomes LatestReady if it is newer
// than the current one. The error wraps ErrNotFound for an unknown name.
func (c *Configuration) MarkReady(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[name]
	if !ok {
		return c.notFound(name)
	}
	c.states[i] = revState{state: StateReady}
	if c.latestReady < 0 || c.revisions[i].generation > c.revisions[c.latestReady].generation {
		c.latestReady = i
	}
	return nil
}

// MarkFailed records that the revision called name failed (for example
// it never became ready), with a reason for humans. LatestReady does not
// change. The error wraps ErrNotFound for an unknown name.
func (c *Configuration) MarkFailed(name, reason string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[name]
	if !ok {
		return c.notFound(name)
	}
	c.states[i] = revState{state: StateFailed, reason: reason}
	return nil
}

func (c *Configuration) notFound(name string) error {
	return fmt.Errorf("%w: %q in configuration %s", ErrNotFound, name, c.name)
}

// ErrLatestCreated is returned by Remove for the revision of the current
// template: Knative would stamp it again at once.
var ErrLatestCreated = errors.New("revision: the latest created revision runs the current template")

// Remove forgets the revision called name, as deleting a Knative Revision
// does. The revision of the current template cannot be removed
// (ErrLatestCreated); removing the latest ready one makes the newest
// other ready revision latest ready. Generations are never reused: the
// next stamped revision still counts on. The error wraps ErrNotFound for
// an unknown name.
func (c *Configuration) Remove(name string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, ok := c.index[name]
	if !ok {
		return c.notFound(name)
	}
	if i == c.latestCreated {
		return fmt.Errorf("%w: %s", ErrLatestCreated, name)
	}
	latestCreated := c.revisions[c.latestCreated].name
	latestReady := ""
	if c.latestReady >= 0 && c.latestReady != i {
		latestReady = c.revisions[c.latestReady].name
	}
	c.revisions = slices.Delete(c.revisions, i, i+1)
	c.states = slices.Delete(c.states, i, i+1)
	delete(c.index, name)
	c.latestReady = -1
	for j, r := range c.revisions {
		c.index[r.name] = j
		switch {
		case latestReady != "":
			if r.name == latestReady {
				c.latestReady = j
			}
		case c.states[j].state == StateReady && (c.latestReady < 0 || r.generation > c.revisions[c.latestReady].generation):
			c.latestReady = j
		}
	}
	c.latestCreated = c.index[latestCreated]
	return nil
}
