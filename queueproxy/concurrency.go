package queueproxy

import (
	"sync/atomic"
	"time"

	"github.com/zeroscale/zeroscale/stats"
)

// concurrency keeps time-weighted request concurrency without a lock.
//
// The integral of concurrency from the epoch to time T is
// I(T) = Σ(exits) − Σ(arrivals) + open·T over all requests so far, in
// microseconds since the epoch. Arrivals add −t to sum, exits add +t,
// so I(T) = sum + open·T, and a period's average is
// (I(T1) − I(T0)) / (T1 − T0). Each event is two atomic adds; the
// reader's two loads are not one snapshot, so an event racing with a
// report shifts at most (report time − event time) between two adjacent
// periods, never out of the total.
type concurrency struct {
	sum, open, arrivals atomic.Int64
}

func (c *concurrency) arrive(us int64) {
	c.sum.Add(-us)
	c.open.Add(1)
	c.arrivals.Add(1)
}

func (c *concurrency) exit(us int64) int64 {
	c.sum.Add(us)
	return c.open.Add(-1)
}

func (c *concurrency) integral(us int64) int64 {
	return c.sum.Load() + c.open.Load()*us
}

// statsRecorder turns arrival and exit events into one Stat per period.
// Arrivals count toward the period they arrive in; concurrency counts
// toward every period a request spans, queued time included.
type statsRecorder struct {
	epoch time.Time
	all   concurrency
	// proxied counts the subset of requests from the trusted activator.
	proxied concurrency

	// Only the reporting goroutine touches these.
	lastAt                  int64 // µs since epoch
	lastAll, lastProxied    int64
	lastArrivals, lastProxA int64
}

func newStatsRecorder(epoch time.Time) *statsRecorder {
	return &statsRecorder{epoch: epoch}
}

func (s *statsRecorder) micros(t time.Time) int64 { return t.Sub(s.epoch).Microseconds() }

func (s *statsRecorder) arrive(t time.Time, proxied bool) {
	us := s.micros(t)
	s.all.arrive(us)
	if proxied {
		s.proxied.arrive(us)
	}
}

// exit records a request's end and returns how many remain open.
func (s *statsRecorder) exit(t time.Time, proxied bool) int64 {
	us := s.micros(t)
	if proxied {
		s.proxied.exit(us)
	}
	return s.all.exit(us)
}

// inFlight is how many requests are open (running or queued).
func (s *statsRecorder) inFlight() int64 { return s.all.open.Load() }

// report closes the period ending at t and returns its Stat (Instance
// unset). A period of zero length reports zero averages and leaves its
// events to the next period.
func (s *statsRecorder) report(t time.Time) stats.Stat {
	us := s.micros(t)
	all, proxied := s.all.integral(us), s.proxied.integral(us)
	arrivals, proxA := s.all.arrivals.Load(), s.proxied.arrivals.Load()
	elapsed := us - s.lastAt
	st := stats.Stat{
		ProcessUptime: t.Sub(s.epoch).Seconds(),
		Timestamp:     t,
	}
	if elapsed <= 0 {
		return st
	}
	secs := float64(elapsed) / 1e6
	st.AverageConcurrency = float64(all-s.lastAll) / float64(elapsed)
	st.AverageProxiedConcurrency = float64(proxied-s.lastProxied) / float64(elapsed)
	st.RequestCount = float64(arrivals-s.lastArrivals) / secs
	st.ProxiedRequestCount = float64(proxA-s.lastProxA) / secs
	s.lastAt, s.lastAll, s.lastProxied, s.lastArrivals, s.lastProxA = us, all, proxied, arrivals, proxA
	return st
}
