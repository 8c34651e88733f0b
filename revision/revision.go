package revision

import (
	"errors"
	"time"

	"k8s.io/utils/clock"
)

var errUnimplemented = errors.New("revision: not implemented yet")

// Revision is an immutable snapshot of a Configuration's template. It has
// no exported mutators; accessors return copies.
type Revision struct {
	name          string
	configuration string
	generation    int64
	spec          Spec
	created       time.Time
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

func (s Spec) clone() Spec { return s } // TODO(revision helper): deep copy

// DefaultConfig returns Knative's config-autoscaler defaults.
func DefaultConfig() Config { return Config{} }

// Resolve returns the effective scaling parameters of spec under c.
func (c Config) Resolve(spec Spec) (ScalingParams, error) {
	return ScalingParams{}, errUnimplemented
}

// Configuration holds the latest template of a service and stamps a new
// Revision each time it really changes. It is safe for concurrent use.
type Configuration struct {
	name  string
	clock clock.PassiveClock
}

// NewConfiguration returns an empty Configuration named name (a DNS-1035
// label). A nil clock means the real clock.
func NewConfiguration(name string, clk clock.PassiveClock) (*Configuration, error) {
	return nil, errUnimplemented
}
