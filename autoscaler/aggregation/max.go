package aggregation

import (
	"fmt"
	"time"
)

// Max is a sliding maximum over a time window split into buckets of a
// fixed granularity (Knative's max.TimeWindow, the scale-down delay): a
// value recorded at t stops counting once a window's worth of buckets
// has been recorded after it. It keeps the maxima in descending order in
// a ring of ceil(window / granularity) entries ("ascending minima"), so
// Record is amortised O(1) and Current O(1).
//
// A Record older than the previous one counts as made at the previous
// one's time. Current is the maximum as of the last Record.
type Max struct {
	maxima        []maxEntry
	first, length int
	granularity   int64 // seconds
}

type maxEntry struct {
	value int
	index int64
}

// NewMax returns an empty window of length window, in [granularity,
// MaxWindow], over buckets of granularity, a whole number of seconds.
func NewMax(window, granularity time.Duration) (*Max, error) {
	if granularity < time.Second || granularity%time.Second != 0 {
		return nil, fmt.Errorf("aggregation: max window granularity %v must be a whole number of seconds ≥ 1s", granularity)
	}
	if window < granularity || window > MaxWindow {
		return nil, fmt.Errorf("aggregation: max window %v out of range [%v, %v]", window, granularity, MaxWindow)
	}
	n := int((window + granularity - 1) / granularity)
	return &Max{maxima: make([]maxEntry, n), granularity: int64(granularity / time.Second)}, nil
}

func (m *Max) at(i int) int { return i % len(m.maxima) }

// Record records v at now.
func (m *Max) Record(now time.Time, v int) {
	index := now.Unix() / m.granularity
	if m.length > 0 {
		// Time must not run backwards; a late value joins the newest
		// bucket so the ring can never hold more than its size.
		index = max(index, m.maxima[m.at(m.first+m.length-1)].index)
	}
	// Drop the entries v dominates: they are older and not larger.
	for ; m.length > 0; m.length-- {
		if v < m.maxima[m.at(m.first+m.length-1)].value {
			break
		}
	}
	// Drop the entries that left the window.
	for m.length > 0 && index-m.maxima[m.first].index >= int64(len(m.maxima)) {
		m.length--
		m.first = m.at(m.first + 1)
	}
	// Several values in one bucket: keep the largest.
	if m.length > 0 {
		if last := m.maxima[m.at(m.first+m.length-1)]; last.index == index {
			v = max(v, last.value)
			m.length--
		}
	}
	m.maxima[m.at(m.first+m.length)] = maxEntry{value: v, index: index}
	m.length++
}

// Current is the maximum in the window as of the last Record (0 before
// any).
func (m *Max) Current() int { return m.maxima[m.first].value }
