package traffic

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/zeroscale/zeroscale/revision"
)

// RevisionState is what resolution needs to know about revisions: the
// latest ready revision of each configuration, and whether a revision
// exists and is ready. Configurations adapts *revision.Configuration; a
// custom control plane implements it over its own store.
type RevisionState interface {
	// LatestReady returns the newest ready revision of configuration.
	// exists is false for an unknown configuration; revision is "" when
	// it exists but none of its revisions is ready yet.
	LatestReady(configuration string) (revision string, exists bool)
	// IsReady reports whether the revision called name exists and
	// whether it is ready.
	IsReady(name string) (ready, exists bool)
}

// Configurations adapts a set of revision.Configurations, keyed by name,
// to RevisionState. A revision is ready when its state is
// revision.StateReady.
type Configurations map[string]*revision.Configuration

// LatestReady implements RevisionState.
func (m Configurations) LatestReady(configuration string) (string, bool) {
	c, ok := m[configuration]
	if !ok || c == nil {
		return "", false
	}
	rev, ok := c.LatestReady()
	if !ok {
		return "", true
	}
	return rev.Name(), true
}

// IsReady implements RevisionState.
func (m Configurations) IsReady(name string) (ready, exists bool) {
	for _, c := range m {
		if c == nil {
			continue
		}
		if state, _, err := c.State(name); err == nil {
			return state == revision.StateReady, true
		}
	}
	return false, false
}

// Traffic is a resolved traffic assignment: each split lists revisions
// with their whole percents, summing to 100, without 0 % entries.
type Traffic struct {
	// Default is the split on the route's own host.
	Default []Split
	// Tags maps each tag to its split (usually its one revision at
	// 100 %; more during a gradual rollout of a latestRevision target).
	Tags map[string][]Split
}

// Split is one revision's share of a route's traffic.
type Split struct {
	Revision string
	Percent  int
}

// String formats s as "revision=percent%".
func (s Split) String() string { return fmt.Sprintf("%s=%d%%", s.Revision, s.Percent) }

// TargetRef names a configuration or revision a route refers to.
type TargetRef struct {
	Kind string // "Configuration" or "Revision"
	Name string
}

// TargetError reports the targets a route could not resolve. Like
// Knative, resolution never guesses: one unresolved target fails the
// whole route, which keeps serving its previous traffic.
type TargetError struct {
	// Missing are referenced configurations and revisions that do not
	// exist.
	Missing []TargetRef
	// NotReady are configurations without a ready revision and revisions
	// that are not ready.
	NotReady []TargetRef
}

func (e *TargetError) Error() string {
	var b strings.Builder
	b.WriteString("traffic: unresolved targets: ")
	sep := ""
	for _, r := range e.Missing {
		fmt.Fprintf(&b, "%s%s %q referenced in traffic not found", sep, r.Kind, r.Name)
		sep = "; "
	}
	for _, r := range e.NotReady {
		if r.Kind == "Configuration" {
			fmt.Fprintf(&b, "%sConfiguration %q is waiting for a Revision to become ready", sep, r.Name)
		} else {
			fmt.Fprintf(&b, "%sRevision %q is not ready", sep, r.Name)
		}
		sep = "; "
	}
	return b.String()
}

func (e *TargetError) add(list *[]TargetRef, kind, name string) {
	r := TargetRef{Kind: kind, Name: name}
	if !slices.Contains(e.Missing, r) && !slices.Contains(e.NotReady, r) {
		*list = append(*list, r)
	}
}

// resolved is one spec target flattened to a revision.
type resolved struct {
	tag      string
	revision string
	config   string // set for latestRevision targets only
	percent  int
}

// resolve flattens targets to revisions: a latestRevision target to its
// configuration's latest ready revision, a revision target to itself
// once checked ready. Missing and unready targets are all collected into
// one *TargetError.
func resolve(targets []Target, defaultConfig string, state RevisionState) ([]resolved, error) {
	if state == nil {
		return nil, errors.New("traffic: nil RevisionState: resolution needs to know the revisions (e.g. a Configurations map)")
	}
	out := make([]resolved, 0, len(targets))
	var terr TargetError
	for _, t := range targets {
		r := resolved{tag: t.Tag, percent: t.Percent}
		if t.LatestRevision {
			r.config = t.ConfigurationName
			if r.config == "" {
				r.config = defaultConfig
			}
			rev, exists := state.LatestReady(r.config)
			switch {
			case !exists:
				terr.add(&terr.Missing, "Configuration", r.config)
			case rev == "":
				terr.add(&terr.NotReady, "Configuration", r.config)
			}
			r.revision = rev
		} else {
			r.revision = t.RevisionName
			ready, exists := state.IsReady(r.revision)
			switch {
			case !exists:
				terr.add(&terr.Missing, "Revision", r.revision)
			case !ready:
				terr.add(&terr.NotReady, "Revision", r.revision)
			}
		}
		out = append(out, r)
	}
	if len(terr.Missing)+len(terr.NotReady) > 0 {
		return nil, &terr
	}
	return out, nil
}

// Resolve validates spec and resolves it against state, as the traffic
// of a route whose own configuration (the default of a latestRevision
// target) is defaultConfiguration. It ignores gradual rollout: it is the
// assignment a rollout converges to. The error is a validation error
// (*revision.FieldError) or a *TargetError.
func Resolve(spec Spec, defaultConfiguration string, state RevisionState) (Traffic, error) {
	if err := spec.Validate(); err != nil {
		return Traffic{}, err
	}
	targets, err := resolve(spec.Traffic, defaultConfiguration, state)
	if err != nil {
		return Traffic{}, err
	}
	return buildTraffic(targets, nil), nil
}

// buildTraffic lays out the route's splits from resolved targets and the
// rollout state. A latestRevision target whose (tag, configuration) is
// rolling out contributes the rollout's shares instead of its single
// revision. The default split merges targets by revision, in order of
// first appearance, and drops 0 % entries; each tag gets 100 %.
func buildTraffic(targets []resolved, ros map[rolloutKey]*rollout) Traffic {
	tr := Traffic{}
	done := map[string]bool{}
	var def []Split
	for _, t := range targets {
		if t.config == "" {
			def = append(def, Split{Revision: t.revision, Percent: t.percent})
			continue
		}
		// Every latestRevision target of a configuration shares one
		// rollout, keyed by the configuration, at the sum of their
		// percents; emit it at its first target.
		if done[t.config] {
			continue
		}
		done[t.config] = true
		if ro, ok := ros[rolloutKey{config: t.config}]; ok {
			def = append(def, ro.revs...)
		} else {
			def = append(def, Split{Revision: t.revision, Percent: latestPercent(targets, t.config)})
		}
	}
	tr.Default = mergeSplits(def)
	for _, t := range targets {
		if t.tag == "" {
			continue
		}
		if tr.Tags == nil {
			tr.Tags = map[string][]Split{}
		}
		split := []Split{{Revision: t.revision, Percent: 100}}
		if ro, ok := ros[rolloutKey{tag: t.tag, config: t.config}]; ok && t.config != "" {
			split = ro.revs // mergeSplits copies it
		}
		tr.Tags[t.tag] = mergeSplits(split)
	}
	return tr
}

// latestPercent is the default split's share of configuration's latest
// ready revision: the sum over its latestRevision targets.
func latestPercent(targets []resolved, config string) int {
	p := 0
	for _, t := range targets {
		if t.config == config {
			p += t.percent
		}
	}
	return p
}

// mergeSplits returns a new slice: in's entries of the same revision
// summed, in order of first appearance, without 0 % entries.
func mergeSplits(in []Split) []Split {
	out := make([]Split, 0, len(in))
	for _, s := range in {
		if i := slices.IndexFunc(out, func(o Split) bool { return o.Revision == s.Revision }); i >= 0 {
			out[i].Percent += s.Percent
		} else {
			out = append(out, s)
		}
	}
	return slices.DeleteFunc(out, func(s Split) bool { return s.Percent == 0 })
}

// Equal reports whether t and o assign the same shares in the same order.
func (t Traffic) Equal(o Traffic) bool {
	return slices.Equal(t.Default, o.Default) && maps.EqualFunc(t.Tags, o.Tags, slices.Equal)
}
