package revision

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseProgressDeadline(t *testing.T) {
	d, err := ParseProgressDeadline(map[string]string{ProgressDeadlineAnnotation: "42s"})
	require.NoError(t, err)
	require.Equal(t, 42*time.Second, d)
	d, err = ParseProgressDeadline(nil)
	require.NoError(t, err)
	require.Zero(t, d)
	for _, v := range []string{"soon", "0s", "1.5s", "-5s", "25h"} {
		_, err := ParseProgressDeadline(map[string]string{ProgressDeadlineAnnotation: v})
		var fe *FieldError
		require.True(t, errors.As(err, &fe), "%q: %v", v, err)
		require.Equal(t, ProgressDeadlineAnnotation, fe.Field)
		require.Contains(t, fe.Allowed, "whole seconds in [1s, 24h0m0s]")
	}
}

func TestProgressDeadlineValidated(t *testing.T) {
	spec := Spec{Command: []string{"app"}, ProgressDeadline: 1500 * time.Millisecond}
	require.ErrorContains(t, spec.Validate(), "Spec.ProgressDeadline")
	// A per-revision deadline is part of the template: a new revision.
	spec.ProgressDeadline = 42 * time.Second
	other := spec
	other.ProgressDeadline = 0
	require.NotEqual(t, spec.Hash(), other.Hash())
}
