package traffic

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/revision"
)

// RolloutDurationAnnotation is Knative's route (and service) annotation
// that turns on gradual rollout; ParseRolloutDuration reads it.
const RolloutDurationAnnotation = "serving.knative.dev/rollout-duration"

// Target is one entry of a route's traffic list, Knative's TrafficTarget.
// It names exactly one of a revision (RevisionName) or the latest ready
// revision of a configuration (LatestRevision), gives it Percent of the
// route's traffic and optionally a Tag with its own host.
type Target struct {
	// Tag names the target. A tagged target is also reachable on its own
	// host (tag template, by default "<tag>-<route>") and, when the route
	// enables it, through the Knative-Serving-Tag request header; both
	// reach it at 100 % whatever its Percent. A DNS-1035 label, unique
	// within the route. Empty means untagged.
	Tag string
	// RevisionName pins the target to one revision, which must exist and
	// be ready.
	RevisionName string
	// LatestRevision makes the target follow the latest ready revision of
	// ConfigurationName.
	LatestRevision bool
	// ConfigurationName is the configuration LatestRevision follows. Empty
	// means the configuration named like the route, as in a Knative
	// Service, whose Configuration and Route share its name. Only allowed
	// with LatestRevision.
	ConfigurationName string
	// Percent of the route's traffic, 0–100. The percents of a route sum
	// to exactly 100. A 0 % tagged target is the "preview" pattern:
	// reachable only by its tag.
	Percent int
}

// Spec is a route's desired traffic: Knative's RouteSpec plus the
// rollout-duration annotation.
type Spec struct {
	// Traffic lists the targets; see Target. It may not be empty, since
	// the percents must sum to 100.
	Traffic []Target
	// RolloutDuration, when positive, rolls a configuration's new latest
	// ready revision out gradually over about this long instead of at
	// once (Knative's serving.knative.dev/rollout-duration). Whole
	// seconds; 0 means off.
	RolloutDuration time.Duration
}

type fieldErrors []error

func (l *fieldErrors) add(field, format string, args ...any) {
	*l = append(*l, &revision.FieldError{Field: field, Message: fmt.Sprintf(format, args...)})
}

func (l fieldErrors) err() error { return errors.Join(l...) }

// Validate checks s as Knative's webhook checks a Route: every percent
// in [0, 100] and their sum exactly 100; each target names exactly one
// of RevisionName or LatestRevision, and a ConfigurationName only with
// LatestRevision; names are valid; tags are unique DNS-1035 labels; the
// rollout duration is whole seconds and not negative. It reports every
// problem, each naming the target index and field.
func (s Spec) Validate() error {
	var errs fieldErrors
	sum := 0
	firstTag := make(map[string]int, len(s.Traffic))
	for i, t := range s.Traffic {
		t.validate(&errs, i)
		sum += t.Percent
		if t.Tag == "" {
			continue
		}
		if !isDNS1035Label(t.Tag) {
			errs.add(fmt.Sprintf("traffic[%d].tag", i), "not a DNS 1035 label: %q: %s", t.Tag, dns1035Rule)
		}
		if j, dup := firstTag[t.Tag]; dup {
			errs.add(fmt.Sprintf("traffic[%d].tag, traffic[%d].tag", j, i), "Multiple definitions for %q", t.Tag)
		} else {
			firstTag[t.Tag] = i
		}
	}
	if sum != 100 {
		errs.add("traffic", "Traffic targets sum to %d, want 100", sum)
	}
	if err := validateRolloutDuration(s.RolloutDuration, s.RolloutDuration.String()); err != "" {
		errs.add("rolloutDuration", "%s", err)
	}
	return errs.err()
}

func (t Target) validate(errs *fieldErrors, i int) {
	at := func(field string) string { return fmt.Sprintf("traffic[%d]%s", i, field) }
	switch {
	case t.LatestRevision && t.RevisionName != "":
		errs.add(at(".latestRevision"), "may not set revisionName %q when latestRevision is true", t.RevisionName)
	case !t.LatestRevision && t.RevisionName == "":
		errs.add(at(""), "expected exactly one of revisionName or latestRevision, got neither")
	}
	if t.RevisionName != "" && t.ConfigurationName != "" {
		errs.add(at(""), "expected exactly one, got both: revisionName, configurationName")
	}
	if t.RevisionName != "" && !isQualifiedName(t.RevisionName) {
		errs.add(at(".revisionName"), "invalid name %q: %s", t.RevisionName, qualifiedNameRule)
	}
	if t.ConfigurationName != "" && !isQualifiedName(t.ConfigurationName) {
		errs.add(at(".configurationName"), "invalid name %q: %s", t.ConfigurationName, qualifiedNameRule)
	}
	if t.Percent < 0 || t.Percent > 100 {
		errs.add(at(".percent"), "%d out of range [0, 100]", t.Percent)
	}
}

// ParseRolloutDuration reads RolloutDurationAnnotation from a route's or
// service's annotations, validated as Knative does: a Go duration, whole
// seconds, not negative. A missing or empty annotation means 0 (off).
func ParseRolloutDuration(annotations map[string]string) (time.Duration, error) {
	v := annotations[RolloutDurationAnnotation]
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, &revision.FieldError{Field: RolloutDurationAnnotation,
			Message: fmt.Sprintf("invalid value %q: want a duration in whole seconds such as \"120s\"", v)}
	}
	if msg := validateRolloutDuration(d, v); msg != "" {
		return 0, &revision.FieldError{Field: RolloutDurationAnnotation, Message: msg}
	}
	return d, nil
}

// validateRolloutDuration returns Knative's message for an invalid
// duration, spelled as given, or "".
func validateRolloutDuration(d time.Duration, spelled string) string {
	switch {
	case d.Truncate(time.Second) != d:
		return fmt.Sprintf("rollout-duration=%s is not at second precision", spelled)
	case d < 0:
		return fmt.Sprintf("rollout-duration=%s must be positive", spelled)
	}
	return ""
}

const (
	dns1035Rule = "must consist of lower case alphanumeric characters or '-', " +
		"start with an alphabetic character, end with an alphanumeric character, and be at most 63 characters"
	qualifiedNameRule = "must be 1-63 alphanumeric characters, '-', '_' or '.', " +
		"starting and ending with an alphanumeric character"
)

func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool {
	return isLower(c) || isDigit(c) || (c >= 'A' && c <= 'Z')
}

// isDNS1035Label is Kubernetes' validation.IsDNS1035Label.
func isDNS1035Label(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isLower(s[0]) {
		return false
	}
	return isDNS1123Label(s)
}

// isDNS1123Label is Kubernetes' validation.IsDNS1123Label.
func isDNS1123Label(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isLower(c) && !isDigit(c) && c != '-' {
			return false
		}
	}
	return true
}

// isDNS1123Subdomain is Kubernetes' validation.IsDNS1123Subdomain,
// restricted to dot-separated DNS-1123 labels (what a host needs).
func isDNS1123Subdomain(s string) bool {
	if len(s) == 0 || len(s) > 253 {
		return false
	}
	for label := range strings.SplitSeq(s, ".") {
		if !isDNS1123Label(label) {
			return false
		}
	}
	return true
}

// isQualifiedName is Kubernetes' validation.IsQualifiedName without the
// optional "prefix/" part, which object names never carry.
func isQualifiedName(s string) bool {
	if len(s) == 0 || len(s) > 63 || !isAlnum(s[0]) || !isAlnum(s[len(s)-1]) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !isAlnum(c) && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}
