package knative

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/zeroscale/zeroscale/revision"
)

// Validation errors are *revision.FieldError, worded as Knative's
// webhook words them (knative.dev/pkg/apis.FieldError): Message, then the
// full paths from the object's root as Field, then Allowed (Knative's
// details) on a line of its own when set, e.g.
//
//	expected 0 <= 1001 <= 1000: spec.template.spec.containerConcurrency
//
// Validation returns every FieldError it finds, sorted by path, joined
// with errors.Join; use errors.As to inspect the first, or Errors for all
// of them.

// Errors returns every *revision.FieldError in err (as Validate and Decode join
// them), in order; nil if there is none.
func Errors(err error) []*revision.FieldError {
	var out []*revision.FieldError
	var walk func(error)
	walk = func(err error) {
		if fe, ok := err.(*revision.FieldError); ok {
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
type fieldErrors struct{ list []*revision.FieldError }

func (l *fieldErrors) add(msg, details string, paths ...string) {
	l.list = append(l.list, &revision.FieldError{Message: msg, Field: strings.Join(paths, ", "), Allowed: details})
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
	slices.SortStableFunc(l.list, func(a, b *revision.FieldError) int {
		return cmp.Compare(a.Field, b.Field)
	})
	errs := make([]error, len(l.list))
	for i, e := range l.list {
		errs[i] = e
	}
	return errors.Join(errs...)
}
