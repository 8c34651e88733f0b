// Package engineopt validates and defaults the lifecycle options that
// the engines (backend/process, backend/docker) share, and the arguments
// of the contract every engine checks, so all refuse the same values
// with the same words.
package engineopt

import (
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/backend"
)

// ReservedCount checks backend.Reserver.ScaleReserved's n, which is 0 or
// 1; pkg starts the error ("process", "docker", "kubernetes", "fake").
func ReservedCount(pkg, revision string, n int) error {
	if n < 0 || n > 1 {
		return fmt.Errorf("%s: scale reserved %s: %w: n = %d, want 0 or 1", pkg, revision, backend.ErrInvalidArgument, n)
	}
	return nil
}

// Duration is one duration option: its field name, where it lives, and
// the value a zero means.
type Duration struct {
	Name    string
	Value   *time.Duration
	Default time.Duration
}

// Durations refuses a negative option and fills a zero one with its
// default; pkg starts the error ("process", "docker").
func Durations(pkg string, ds ...Duration) error {
	for _, d := range ds {
		if *d.Value < 0 {
			return fmt.Errorf("%s: Options.%s = %v: want ≥ 0 (0 = default)", pkg, d.Name, *d.Value)
		}
		if *d.Value == 0 {
			*d.Value = d.Default
		}
	}
	return nil
}

// Backoff refuses a minimum restart back-off above the maximum.
func Backoff(pkg string, lo, hi time.Duration) error {
	if lo > hi {
		return fmt.Errorf("%s: Options.MinRestartBackoff = %v: want ≤ MaxRestartBackoff (%v)", pkg, lo, hi)
	}
	return nil
}

// Count refuses a negative count option and fills a zero one with def.
func Count(pkg, name string, n *int, def int) error {
	if *n < 0 {
		return fmt.Errorf("%s: Options.%s = %d: want ≥ 0 (0 = %d)", pkg, name, *n, def)
	}
	if *n == 0 {
		*n = def
	}
	return nil
}
