package aggregation

import (
	"math"
	"time"
)

// Smoothing bounds of WeightedExponential, Knative's constants.
const (
	minSmoothing    = 0.2
	weightPrecision = 0.9999
)

// WeightedExponential is a window of 1-second buckets averaged with
// exponentially decaying weights (Knative's WeightedFloat64Buckets): the
// newest second weighs m, the one before m(1−m), then m(1−m)², …, with
// m = max(1 − 0.0001^(1/n), 0.2) for n buckets, so the weights of a full
// window add up to at least 0.9999 (or m is floored at 0.2 for windows of
// 42 s and more). Seconds between the last write and the read count as
// zeros (the weights keep decaying). The result is not normalised and
// not truncated. Recording has Linear's semantics.
type WeightedExponential struct {
	Linear
	m float64
}

// NewWeightedExponential returns an empty weighted window of the given
// length, in [1s, MaxWindow].
func NewWeightedExponential(window time.Duration) (*WeightedExponential, error) {
	l, err := NewLinear(window)
	if err != nil {
		return nil, err
	}
	return &WeightedExponential{Linear: *l, m: smoothing(len(l.buckets))}, nil
}

func smoothing(n int) float64 {
	return math.Max(1-math.Pow(1-weightPrecision, 1/float64(n)), minSmoothing)
}

// Smoothing is the weight m of the newest second.
func (w *WeightedExponential) Smoothing() float64 { return w.m }

// Average is the weighted average as of now.
func (w *WeightedExponential) Average(now time.Time) float64 {
	if w.IsEmpty(now) {
		return 0
	}
	nb := int64(len(w.buckets))
	mult := w.m
	if z := second(now) - w.last; z > 0 {
		// Skip the z zero seconds at once: the newest value weighs m(1−m)^z.
		mult *= math.Pow(1-w.m, float64(z))
		nb -= z
	}
	var sum float64
	for k := int64(0); k < nb; k++ {
		sum += w.buckets[w.index(w.last-k)] * mult
		mult *= 1 - w.m
	}
	return sum
}

// Resize changes the window's length as Linear.Resize does, and
// recomputes the smoothing factor.
func (w *WeightedExponential) Resize(window time.Duration, now time.Time) error {
	if err := w.Linear.Resize(window, now); err != nil {
		return err
	}
	w.m = smoothing(len(w.buckets))
	return nil
}
