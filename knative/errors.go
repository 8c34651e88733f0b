package knative

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one problem with a manifest, worded as Knative's webhook
// words it (knative.dev/pkg/apis.FieldError): Error() is
// "<message>: <paths>", then Details on a line of its own when set,
// e.g.
//
//	expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency
//
// Paths are full, from the object's root. Validation returns every
// FieldError it finds, sorted by path, joined with errors.Join; use
// errors.As to inspect the first, or Errors for all of them.
type FieldError struct {
	Message string
	Paths   []string
	Details string
}

func (e *FieldError) Error() string {
	s := e.Message + ": " + strings.Join(e.Paths, ", ")
	if e.Details != "" {
		s += "\n" + e.Details
	}
	return s
}

// Errors returns every *FieldError in err (as Validate and Decode join
// them), in order; nil if there is none.
func Errors(err error) []*FieldError {
	var out []*FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*FieldError); ok {
			out = append(out, fe)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// fieldErrors collects FieldErrors under a path prefix.
type fieldErrors struct{ list []*FieldError }

func (l *fieldErrors) add(msg, details string, paths ...string) {
	l.list = append(l.list, &FieldError{Message: msg, Paths: paths, Details: details})
}

// Knative's helpers (knative.dev/pkg/apis), same wording.

func (l *fieldErrors) missing(paths ...string) { l.add("missing field(s)", "", paths...) }

func (l *fieldErrors) disallowed(paths ...string) { l.add("must not set the field(s)", "", paths...) }

func (l *fieldErrors) invalid(value any, path string, details ...string) {
	l.add(fmt.Sprintf("invalid value: %v", value), strings.Join(details, ", "), path)
}

func (l *fieldErrors) outOfBounds(value, lower, upper any, path string) {
	l.add(fmt.Sprintf("expected %v <= %v <= %v", lower, value, upper), "", path)
}

// unsupported is ours: a field Knative accepts that does not run here.
func (l *fieldErrors) unsupported(why string, paths ...string) {
	l.add("not supported by zeroscale", why, paths...)
}

// err returns the errors sorted by path (Knative sorts them too), joined.
func (l *fieldErrors) err() error {
	if len(l.list) == 0 {
		return nil
	}
	slices.SortStableFunc(l.list, func(a, b *FieldError) int {
		return cmp.Compare(strings.Join(a.Paths, ", "), strings.Join(b.Paths, ", "))
	})
	errs := make([]error, len(l.list))
	for i, e := range l.list {
		errs[i] = e
	}
	return errors.Join(errs...)
}
