// Package bounds holds the range checks that revision (a revision's own
// settings) and autoscaler (the host's Config and the resolved
// ScalingParams) both apply, so a value accepted in one place is never
// refused in the other for a different reason.
package bounds

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// Limits shared by revision and autoscaler.
const (
	// MaxInt32 bounds every integer setting, as Knative's int32 fields.
	MaxInt32 = math.MaxInt32
	// MaxContainerConcurrency bounds Spec.ContainerConcurrency.
	MaxContainerConcurrency = 1000
	// MaxProgressDeadline bounds Spec's and the host Config's
	// ProgressDeadline.
	MaxProgressDeadline = 24 * time.Hour
	// ProgressDeadlineRange says in words what ProgressDeadline accepts.
	ProgressDeadlineRange = "a duration of whole seconds in [1s, 24h0m0s]"
)

// Finite reports whether f is neither NaN nor ±Inf.
func Finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// FormatFloat renders f as an error message shows it.
func FormatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// InDuration reports whether d is in [lo, hi], and whole seconds if
// whole; DurationRange says so in words.
func InDuration(d, lo, hi time.Duration, whole bool) bool {
	return d >= lo && d <= hi && (!whole || d%time.Second == 0)
}

// DurationRange is the allowed range of InDuration in words.
func DurationRange(lo, hi time.Duration, whole bool) string {
	r := fmt.Sprintf("[%v, %v]", lo, hi)
	if whole {
		r += ", whole seconds"
	}
	return r
}

// TargetBurstCapacity reports whether f is a valid target burst
// capacity: ≥ 0, or exactly -1 (unlimited).
func TargetBurstCapacity(f float64) bool { return f >= 0 || f == -1 }

// ProgressDeadline reports whether d is a valid set progress deadline
// (ProgressDeadlineRange).
func ProgressDeadline(d time.Duration) bool {
	return InDuration(d, time.Second, MaxProgressDeadline, true)
}

// ContainerConcurrency reports whether cc is a valid container
// concurrency; ContainerConcurrencyRange says so in words.
func ContainerConcurrency(cc int) bool { return cc >= 0 && cc <= MaxContainerConcurrency }

// ContainerConcurrencyRange is the allowed range of ContainerConcurrency
// (MaxContainerConcurrency spelled out).
const ContainerConcurrencyRange = "in [0, 1000] (0 = unlimited)"
