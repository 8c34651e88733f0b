package autoscaler

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

const benchRevisions = 10_000

// BenchmarkMultiscaler10kRevisions measures the loop with 10,000 pushed
// revisions under steady load: one op is one 2-second period, i.e. two
// pushed stats per revision (not timed: that is the reporters' cost,
// see BenchmarkCollectorReport) and one decision tick over all
// revisions (timed). It reports the tick's CPU as a share of one core at
// the 2 s tick and the heap bytes each revision costs.
func BenchmarkMultiscaler10kRevisions(b *testing.B) {
	p, err := DefaultConfig().Resolve(revision.Spec{})
	if err != nil {
		b.Fatal(err)
	}
	clk := clocktesting.NewFakeClock(t0)
	names := make([]string, benchRevisions)
	for i := range names {
		names[i] = fmt.Sprintf("svc-%05d-00001", i)
	}

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	m, err := New(Options{Clock: clk, Publisher: PublisherFunc(func(Decision) {})})
	if err != nil {
		b.Fatal(err)
	}
	coll := m.Reporter()
	push := func() {
		for i, n := range names {
			coll.Report(n, stats.Stat{AverageConcurrency: float64(i % 300), RequestCount: float64(i % 500)})
		}
	}
	for _, n := range names {
		if err := m.Set(n, Revision{Params: p, Source: Pushed}); err != nil {
			b.Fatal(err)
		}
		if err := m.setServing(n, 2); err != nil {
			b.Fatal(err)
		}
	}
	m.handlePokes(clk.Now())
	// Warm up a full stable window so every ring is in use.
	for range 31 {
		clk.Step(time.Second)
		push()
		clk.Step(time.Second)
		push()
		m.tick(clk.Now())
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	perRevision := float64(after.HeapAlloc-before.HeapAlloc) / benchRevisions

	var ticking time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		clk.Step(time.Second)
		push()
		clk.Step(time.Second)
		push()
		b.StartTimer()
		start := time.Now()
		m.tick(clk.Now())
		ticking += time.Since(start)
	}
	b.StopTimer()
	perTick := float64(ticking.Nanoseconds()) / float64(b.N)
	b.ReportMetric(perTick/float64(TickInterval.Nanoseconds())*100, "cpu-%-of-core-at-2s-tick")
	b.ReportMetric(perTick/benchRevisions, "ns/revision-decision")
	b.ReportMetric(perRevision, "bytes/revision")
	// The goals: < 5 % of a core at the 2 s tick, < 4 KB a revision.
	b.ReportMetric(perTick/float64(TickInterval.Nanoseconds())*100/5, "cpu-goal-ratio")
	b.ReportMetric(perRevision/4096, "memory-goal-ratio")
	runtime.KeepAlive(m)
}

// BenchmarkCollectorReport is the cost of one pushed stat.
func BenchmarkCollectorReport(b *testing.B) {
	p, err := DefaultConfig().Resolve(revision.Spec{})
	if err != nil {
		b.Fatal(err)
	}
	c := newCollector(collectorOptions{OnDemand: func(string) {}})
	if err := c.Add("r", p, false); err != nil {
		b.Fatal(err)
	}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%8 == 0 {
			now = now.Add(time.Second)
		}
		c.Report("r", stats.Stat{AverageConcurrency: float64(i % 7), RequestCount: 3, Timestamp: now})
	}
}
