package revision

import (
	"fmt"
	"time"
)

// Revision is an immutable snapshot of a Configuration's template. It has
// no exported mutators; accessors return copies, so a Revision value can
// be shared between goroutines freely. The zero Revision is not valid;
// build one with New or Configuration.Update.
type Revision struct {
	name          string
	configuration string
	generation    int64
	spec          Spec
	hash          string
	created       time.Time
}

// New returns the Revision name of the Configuration configuration,
// stamped at generation (≥ 1) and time created, running spec with its
// defaults applied (Spec.WithDefaults). Both names must be DNS-1035
// labels; spec must pass Spec.Validate. New keeps its own deep copy of
// spec. Configuration.Update calls New; tests and custom control planes
// may call it directly.
func New(configuration, name string, generation int64, spec Spec, created time.Time) (Revision, error) {
	var errs errList
	if !isDNS1035Label(configuration) {
		errs.add("Revision.Configuration", configuration, dns1035Allowed)
	}
	if !isDNS1035Label(name) {
		errs.add("Revision.Name", name, dns1035Allowed)
	}
	if generation < 1 {
		errs.add("Revision.Generation", fmt.Sprint(generation), "≥ 1")
	}
	spec = spec.WithDefaults()
	errs.merge(spec.validate())
	if err := errs.err(); err != nil {
		return Revision{}, err
	}
	return newRevision(configuration, name, generation, spec, spec.hash(), created), nil
}

// newRevision assembles a Revision from checked parts: spec already has
// its defaults, is owned by the Revision from now on, and hashes to hash.
func newRevision(configuration, name string, generation int64, spec Spec, hash string, created time.Time) Revision {
	return Revision{
		name:          name,
		configuration: configuration,
		generation:    generation,
		spec:          spec,
		hash:          hash,
		created:       created,
	}
}

// Name is the revision's unique name, e.g. "hello-00001".
func (r Revision) Name() string { return r.name }

// Configuration is the name of the Configuration that stamped it.
func (r Revision) Configuration() string { return r.configuration }

// Generation is the Configuration generation it was stamped at (1, 2, …).
func (r Revision) Generation() int64 { return r.generation }

// Created is when it was stamped.
func (r Revision) Created() time.Time { return r.created }

// Spec returns a deep copy of the revision's spec, defaults applied.
func (r Revision) Spec() Spec { return r.spec.clone() }

// SpecHash is Spec().Hash(), computed once.
func (r Revision) SpecHash() string { return r.hash }

// IsZero reports whether r is the zero Revision (not built by New).
func (r Revision) IsZero() bool { return r.name == "" }

// String returns the revision's name.
func (r Revision) String() string { return r.name }

const dns1035Allowed = "a DNS-1035 label: 1–63 characters of a-z, 0-9 and '-', starting with a letter and ending with a letter or digit"

// isDNS1035Label reports whether s is a DNS-1035 label, Kubernetes'
// rule for Service and Knative Revision names.
func isDNS1035Label(s string) bool {
	if len(s) == 0 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z':
		case ('0' <= c && c <= '9') || c == '-':
			if i == 0 {
				return false
			}
		default:
			return false
		}
	}
	return s[len(s)-1] != '-'
}
