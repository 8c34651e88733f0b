package revision

import (
	"errors"
	"fmt"
	"strings"
)

// FieldError reports one invalid setting; it is the one error type of
// every validation in zeroscale (revision, traffic, knative manifests).
// Validation functions return every FieldError they find, joined with
// errors.Join; use errors.As to inspect the first one.
//
// Without a Message it reads
//
//	invalid autoscaling.knative.dev/window "5s": must be a Go duration in [6s, 1h0m0s], whole seconds
//
// and with one, as Knative's webhook words it (knative.dev/pkg/apis),
// "<Message>: <Field>", then Allowed on a line of its own when set:
//
//	expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency
type FieldError struct {
	// Field is the setting's path: an annotation key, a Go field
	// ("Config.StableWindow" of autoscaler.Config, "Spec.Port"), a route's "traffic[1].percent"
	// or a manifest path from its root. Several paths are joined with
	// ", " when the problem lies between them.
	Field string
	// Value is the offending value, as given or rendered.
	Value string
	// Allowed is the accepted range, set or rule, e.g. "a Go duration in
	// [6s, 1h0m0s], whole seconds".
	Allowed string
	// Message, when set, says what is wrong in other words than "invalid
	// <Field> <Value>", e.g. "missing field(s)" or "Traffic targets sum to
	// 90, want 100".
	Message string
}

func (e *FieldError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("invalid %s %q: must be %s", e.Field, e.Value, e.Allowed)
	}
	s := e.Message + ": " + e.Field
	if e.Allowed != "" {
		s += "\n" + e.Allowed
	}
	return s
}

// Paths returns Field split into its paths.
func (e *FieldError) Paths() []string { return strings.Split(e.Field, ", ") }

// Errors of Configuration and Revision operations, checkable with errors.Is.
var (
	// ErrNotFound means no revision of that name exists in the Configuration.
	ErrNotFound = errors.New("revision: not found")
	// ErrNameInUse means a revision name is already taken by a revision
	// with a different spec: a changed template needs a new name.
	ErrNameInUse = errors.New("revision: name already used by a different spec")
)

// errList accumulates FieldErrors in a stable order.
type errList []error

func (l *errList) add(field, value, allowed string) {
	*l = append(*l, &FieldError{Field: field, Value: value, Allowed: allowed})
}

// merge appends the errors joined in err (nil adds nothing), keeping the
// list flat so callers see one level of FieldErrors.
func (l *errList) merge(err error) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		*l = append(*l, j.Unwrap()...)
	} else if err != nil {
		*l = append(*l, err)
	}
}

func (l errList) err() error { return errors.Join(l...) }
