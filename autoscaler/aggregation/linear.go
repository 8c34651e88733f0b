package aggregation

import (
	"fmt"
	"math"
	"time"
)

// MaxWindow bounds a window's length, and so its memory (8 bytes a second).
const MaxWindow = time.Hour

// Linear is a window of 1-second buckets averaged linearly, with
// Knative's semantics:
//
//   - a bucket holds the sum of every value recorded in its second
//     (several reporters add up to a revision total);
//   - the average starts at the first write: one write of 12 averages to
//     12, not 12/60;
//   - trailing seconds with no write between the last write and the read
//     are left out of the average, while gaps between writes count as
//     zeros;
//   - after a full window with no write the average is 0 and the next
//     write restarts the window;
//   - writes at or before the last write minus the window are ignored;
//   - the average is truncated to 6 decimal digits.
//
// The zero value is unusable; call NewLinear.
type Linear struct {
	buckets []float64
	window  time.Duration
	// first and last are the Unix seconds of the first and last written
	// buckets; written says whether there has been a write at all.
	first, last int64
	written     bool
	// total is the sum of the whole ring, including buckets outside the
	// [first, last] range that are still zero-filled.
	total float64
}

// NewLinear returns an empty linear window of the given length, which
// must be in [1s, MaxWindow]; it holds ceil(window / 1s) buckets.
func NewLinear(window time.Duration) (*Linear, error) {
	if err := checkWindow(window); err != nil {
		return nil, err
	}
	return &Linear{buckets: make([]float64, numBuckets(window)), window: window}, nil
}

func checkWindow(w time.Duration) error {
	if w < time.Second || w > MaxWindow {
		return fmt.Errorf("aggregation: window %v out of range [1s, %v]", w, MaxWindow)
	}
	return nil
}

func numBuckets(w time.Duration) int { return int((w + time.Second - 1) / time.Second) }

// second is t's bucket: its Unix second, rounded down (Unix floors).
func second(t time.Time) int64 { return t.Unix() }

func (w *Linear) index(sec int64) int {
	n := int64(len(w.buckets))
	return int(((sec % n) + n) % n)
}

// atLeastWindow reports whether d seconds is at least the window.
func (w *Linear) atLeastWindow(d int64) bool { return time.Duration(d)*time.Second >= w.window }

// Window is the window's length.
func (w *Linear) Window() time.Duration { return w.window }

// Record adds v to the bucket of t. NaN and ±Inf are ignored: the window
// keeps a running total, which one of them would poison for good.
func (w *Linear) Record(t time.Time, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	b := second(t)
	if !w.written {
		w.written, w.first, w.last = true, b, b
		w.buckets[w.index(b)] += v
		w.total += v
		return
	}
	if b != w.last {
		if w.atLeastWindow(w.last - b) {
			return // older than the window: ignored, as Knative does
		}
		if b < w.first {
			w.first = b
		}
		if b > w.last {
			if w.atLeastWindow(b - w.last) {
				// A full window without writes: start over.
				w.first = b
				clear(w.buckets)
				w.total = 0
			} else {
				// Zero the buckets of the seconds skipped since the last
				// write, which still hold values a ring-length old.
				for s := w.last + 1; s <= b; s++ {
					i := w.index(s)
					w.total -= w.buckets[i]
					w.buckets[i] = 0
				}
			}
			w.last = b
		}
	}
	w.buckets[w.index(b)] += v
	w.total += v
}

// IsEmpty reports whether nothing was written within the window before now.
func (w *Linear) IsEmpty(now time.Time) bool {
	return !w.written || time.Duration(second(now)-w.last)*time.Second > w.window
}

// Average is the window's average as of now.
func (w *Linear) Average(now time.Time) float64 {
	if !w.written {
		return 0
	}
	n := second(now)
	d := n - w.last
	seen := w.last - w.first + 1 // seconds since the first write, inclusive
	switch {
	case d <= 0:
		return truncate(w.total / float64(min(seen, int64(len(w.buckets)))))
	case !w.atLeastWindow(d):
		// Leave out the trailing seconds without writes: their buckets
		// still hold values a ring-length old.
		total := w.total
		for s := w.last + 1; s <= n; s++ {
			total -= w.buckets[w.index(s)]
		}
		return truncate(total / float64(min(seen, int64(len(w.buckets))-d)))
	default:
		return 0
	}
}

// truncate keeps 6 decimal digits, as Knative does, so float noise from
// adding and subtracting ring values cannot turn zero demand into one
// instance through ceil.
func truncate(f float64) float64 {
	const p = 1e6
	return math.Floor(f*p) / p
}

// Resize changes the window's length (in [1s, MaxWindow]) keeping the
// newest buckets that fit, as Knative's ResizeWindow does. now decides
// whether the old data is still current (Knative reads the wall clock).
func (w *Linear) Resize(window time.Duration, now time.Time) error {
	if err := checkWindow(window); err != nil {
		return err
	}
	if window == w.window {
		return nil
	}
	nb := numBuckets(window)
	old := w.buckets
	w.buckets = make([]float64, nb)
	w.total = 0
	if w.written && time.Duration(second(now)-w.last)*time.Second <= w.window {
		oldN := int64(len(old))
		kept := min(int64(nb), oldN)
		for k := range kept {
			s := w.last - k
			v := old[((s%oldN)+oldN)%oldN]
			w.buckets[w.index(s)] = v
			w.total += v
		}
		// Knative moves the first write back to the start of the old
		// ring, which dilutes a young window's average after a resize;
		// only move it as far as the kept buckets reach.
		w.first = max(w.first, w.last-(kept-1))
	} else {
		w.written = false
	}
	w.window = window
	return nil
}
