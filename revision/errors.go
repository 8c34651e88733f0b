package revision

import (
	"errors"
	"fmt"
)

// FieldError reports one invalid setting: an annotation key, a Config
// field or a Spec field, the value as given, and what would be accepted.
// Validation functions return every FieldError they find, joined with
// errors.Join; use errors.As to inspect the first one.
type FieldError struct {
	Field   string // e.g. "autoscaling.knative.dev/window", "Config.StableWindow", "Spec.Port"
	Value   string // the offending value, as given or rendered
	Allowed string // the accepted range or set, e.g. "a Go duration in [6s, 1h0m0s], whole seconds"
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("revision: invalid %s %q: must be %s", e.Field, e.Value, e.Allowed)
}

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
