package autoscaler

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// harness drives a Multiscaler synchronously on a fake clock: tick and
// pokes run what Run's goroutine would, so no test waits on a goroutine.
type harness struct {
	t   *testing.T
	clk *clocktesting.FakeClock
	m   *Multiscaler
	pub []Decision
}

func newHarness(t *testing.T, o Options) *harness {
	t.Helper()
	h := &harness{t: t, clk: clocktesting.NewFakeClock(t0)}
	o.Clock = h.clk
	o.Publisher = PublisherFunc(func(d Decision) { h.pub = append(h.pub, d) })
	m, err := New(o)
	require.NoError(t, err)
	h.m = m
	return h
}

func defaultParams(t *testing.T, edit func(*Config, *revision.Spec)) ScalingParams {
	t.Helper()
	cfg, spec := DefaultConfig(), revision.Spec{}
	if edit != nil {
		edit(&cfg, &spec)
	}
	p, err := cfg.Resolve(spec)
	require.NoError(t, err)
	return p
}

func (h *harness) set(rev string, p ScalingParams, src Source) {
	h.t.Helper()
	require.NoError(h.t, h.m.Set(rev, Revision{Params: p, Source: src}))
	h.pokes()
}

func (h *harness) tick()  { h.m.tick(h.clk.Now()) }
func (h *harness) pokes() { h.m.handlePokes(h.clk.Now()) }

func (h *harness) last(rev string) Decision {
	h.t.Helper()
	for i := len(h.pub) - 1; i >= 0; i-- {
		if h.pub[i].Revision == rev {
			return h.pub[i]
		}
	}
	h.t.Fatalf("nothing published for %s", rev)
	return Decision{}
}

func (h *harness) ready(rev string, n int) {
	h.t.Helper()
	require.NoError(h.t, h.m.setServing(rev, n))
}

// load simulates a revision for secs seconds: every second each ready
// instance's queue-proxy pushes its stat (conc(second) in total), every
// TickInterval the loop decides, and the host follows Scale at once.
// It returns the second at which Scale first became 0 (or -1).
func (h *harness) load(rev string, secs int, conc func(sec int) float64) (zeroAt int) {
	h.t.Helper()
	zeroAt = -1
	start := int(h.clk.Now().Sub(t0) / time.Second)
	for i := 1; i <= secs; i++ {
		h.clk.Step(time.Second)
		sec := start + i
		d := h.last(rev)
		if d.Scale > 0 {
			h.m.Reporter().Report(rev, stats.Stat{AverageConcurrency: conc(sec), RequestCount: conc(sec)})
		}
		if sec%2 == 0 {
			h.tick()
		}
		d = h.last(rev)
		h.ready(rev, d.Scale)
		if d.Scale == 0 && zeroAt < 0 {
			zeroAt = sec
		}
	}
	return zeroAt
}

func burst(until int) func(int) float64 {
	return func(sec int) float64 {
		if sec <= until {
			return 1
		}
		return 0
	}
}

func TestDefaultScaleToZeroTimeline(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tbc      float64
		min, max int // seconds from the last request to the last instance's removal
	}{
		{"default target burst capacity: activator already in path", 211, 60, 90},
		{"target burst capacity 0: full grace period", 0, 88, 92},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Options{})
			p := defaultParams(t, nil)
			p.TargetBurstCapacity = tc.tbc
			h.set("r", p, Pushed)
			if d := h.last("r"); d.Scale != 1 || d.State != StateActivating || d.Reason != ReasonQueued || d.Desired != -1 {
				t.Fatalf("first decision = %+v, want initial scale 1, Activating/Queued, desired unknown", d)
			}
			h.ready("r", 1)
			const lastRequest = 5
			zeroAt := h.load("r", 200, burst(lastRequest))
			if got := zeroAt - lastRequest; got < tc.min || got > tc.max {
				t.Fatalf("last instance removed %d s after the last request, want %d–%d s", got, tc.min, tc.max)
			}
			// It went Inactive (NoTraffic) before Scale reached 0.
			var inactiveAt time.Time
			for _, d := range h.pub {
				if d.State == StateInactive && inactiveAt.IsZero() {
					inactiveAt = d.Time
					if d.Reason != ReasonNoTraffic || !d.ActivatorInPath || d.Desired != 0 || d.Scale != 1 {
						t.Fatalf("first inactive decision = %+v, want NoTraffic, activator in path, desired 0, scale still 1", d)
					}
				}
			}
			if inactiveAt.IsZero() || inactiveAt.Sub(t0) < 60*time.Second {
				t.Fatalf("went inactive at %v, want after a stable window of zero demand", inactiveAt.Sub(t0))
			}
		})
	}
}

func TestScaleToZeroWithoutIdlePushes(t *testing.T) {
	// In-process reporters that stay silent when idle: a push-only
	// revision reads zero demand once a stable window passes.
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, nil), Pushed)
	h.ready("r", 1)
	zeroAt := h.load("r", 200, func(sec int) float64 {
		if sec <= 5 {
			return 1
		}
		return 0
	})
	if zeroAt-5 < 60 || zeroAt-5 > 90 {
		t.Fatalf("scaled to zero %d s after the last request, want 60–90", zeroAt-5)
	}
}

func TestPokeScalesFromZeroAtOnce(t *testing.T) {
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, nil), Pushed)
	h.ready("r", 1)
	if h.load("r", 100, burst(0)) < 0 {
		t.Fatal("never scaled to zero")
	}
	n := len(h.pub)
	// An activator buffering one request reports it: decided at once,
	// without waiting for the tick.
	h.clk.Step(300 * time.Millisecond)
	h.m.Reporter().Report("r", stats.Stat{Instance: "activator", AverageConcurrency: 1, RequestCount: 1})
	h.pokes()
	if len(h.pub) == n {
		t.Fatal("nothing published after the poke")
	}
	d := h.last("r")
	if d.Scale != 1 || d.State != StateActivating || d.Reason != ReasonQueued || !d.ActivatorInPath {
		t.Fatalf("after poke: %+v, want scale 1, Activating/Queued, activator in path", d)
	}
	// A poke while desired > 0 decides nothing until the tick.
	n = len(h.pub)
	h.ready("r", 1)
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 5})
	h.pokes()
	if len(h.pub) != n {
		t.Fatalf("poke with desired > 0 published %+v", h.pub[n:])
	}
	h.clk.Step(TickInterval)
	h.tick()
	if d := h.last("r"); d.State != StateActive {
		t.Fatalf("after tick with 1 ready: %+v, want Active", d)
	}
}

func TestNoDataNoDecision(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, nil)
	h.set("r", p, Scraped) // no targets: nothing is scraped
	h.ready("r", 1)
	for range 100 {
		h.clk.Step(TickInterval)
		h.tick()
	}
	if d := h.last("r"); d.Desired != -1 || d.Scale != 1 || d.State != StateActive {
		t.Fatalf("decision without data = %+v, want desired unknown, scale 1 (the initial), Active", d)
	}
	// Data arrives (an activator push): decisions resume.
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 150})
	h.clk.Step(TickInterval)
	h.tick()
	if d := h.last("r"); d.Desired != 3 || d.Scale != 3 {
		t.Fatalf("decision with data = %+v, want 3", d)
	}
}

func TestScaleBounds(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, nil)
	p.MinScale, p.MaxScale = 2, 3
	h.set("r", p, Pushed)
	if d := h.last("r"); d.Scale != 2 {
		t.Fatalf("initial = %+v, want min-scale 2", d)
	}
	h.ready("r", 1)
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 10_000})
	h.tick()
	if d := h.last("r"); d.Scale != 3 || d.Desired != 3 {
		t.Fatalf("huge demand: %+v, want max-scale 3", d)
	}
	h.ready("r", 3)
	h.load("r", 200, burst(0))
	if d := h.last("r"); d.Scale != 2 || d.State != StateActive {
		t.Fatalf("idle: %+v, want min-scale 2, Active", d)
	}
	// Unreachable: min-scale no longer applies, down to zero.
	require.NoError(t, h.m.SetReachable("r", false))
	if h.load("r", 200, burst(0)) < 0 {
		t.Fatalf("unreachable idle revision not scaled to zero: %+v", h.last("r"))
	}
}

func TestInitialScale(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, nil)
	p.InitialScale = 3
	h.set("r", p, Pushed)
	h.ready("r", 2)
	h.clk.Step(TickInterval)
	h.tick()
	if d := h.last("r"); d.Scale != 3 || d.State != StateActivating {
		t.Fatalf("before reaching the initial scale: %+v, want 3, Activating", d)
	}
	h.ready("r", 3)
	h.clk.Step(TickInterval)
	h.tick()
	h.clk.Step(TickInterval)
	h.tick()
	if d := h.last("r"); d.Scale != 1 || d.State != StateActive {
		t.Fatalf("once reached, idle: %+v, want 3/2 = 1 (rate-limited), Active", d)
	}
}

func TestZeroInitialScale(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, func(c *Config, s *revision.Spec) {
		c.AllowZeroInitialScale = true
		zero := 0
		s.Scaling.InitialScale = &zero
	})
	h.set("r", p, Pushed)
	if d := h.last("r"); d.Scale != 0 || d.State != StateInactive || d.Reason != ReasonNoTraffic || !d.ActivatorInPath {
		t.Fatalf("zero initial scale: %+v, want 0, Inactive/NoTraffic, activator in path", d)
	}
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 1})
	h.pokes()
	if d := h.last("r"); d.Scale != 1 {
		t.Fatalf("first request: %+v, want 1", d)
	}
}

func TestScaleToZeroDisabled(t *testing.T) {
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, func(c *Config, _ *revision.Spec) { c.EnableScaleToZero = false }), Pushed)
	h.ready("r", 1)
	if z := h.load("r", 300, burst(3)); z >= 0 {
		t.Fatalf("scaled to zero at %d s with scale to zero disabled", z)
	}
	if d := h.last("r"); d.Scale != 1 || d.State != StateActive {
		t.Fatalf("%+v, want 1, Active", d)
	}
}

func TestPodRetentionPeriod(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, nil)
	p.ScaleToZeroPodRetentionPeriod = 120 * time.Second
	h.set("r", p, Pushed)
	h.ready("r", 1)
	zeroAt := h.load("r", 400, burst(5))
	var inactiveAt int
	for _, d := range h.pub {
		if d.State == StateInactive {
			inactiveAt = int(d.Time.Sub(t0) / time.Second)
			break
		}
	}
	if got := zeroAt - inactiveAt; got < 120 || got > 122 {
		t.Fatalf("scaled to zero %d s after going inactive, want the 120 s retention", got)
	}
}

func TestActivationTimeout(t *testing.T) {
	// A per-revision deadline (the serving.knative.dev/progress-deadline
	// annotation) replaces the host's 600 s.
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, func(_ *Config, s *revision.Spec) { s.ProgressDeadline = 100 * time.Second }), Pushed)
	// No instance ever becomes ready and nobody asks for one.
	var zeroAt time.Duration
	for i := 0; i < 100 && zeroAt == 0; i++ {
		h.clk.Step(TickInterval)
		h.tick()
		if d := h.last("r"); d.Scale == 0 {
			zeroAt = h.clk.Now().Sub(t0)
			if d.State != StateInactive || d.Reason != ReasonTimedOut {
				t.Fatalf("%+v, want Inactive/TimedOut", d)
			}
		}
	}
	if zeroAt <= 130*time.Second || zeroAt > 132*time.Second {
		t.Fatalf("gave up activating after %v, want just over deadline + 30 s", zeroAt)
	}
}

func TestPublishOnlyChanges(t *testing.T) {
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, nil), Pushed)
	h.ready("r", 1)
	h.tick() // Active
	h.clk.Step(TickInterval)
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 10})
	h.tick() // desired 1
	n := len(h.pub)
	for range 10 {
		h.clk.Step(TickInterval)
		h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 10})
		h.tick()
	}
	if len(h.pub) != n {
		t.Fatalf("steady state published %d more decisions: %+v, before: %+v", len(h.pub)-n, h.pub[n:], h.pub[n-1])
	}
}

func TestSetValidatesAndRemove(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, nil)
	p.MinScale, p.MaxScale = 3, 2
	require.ErrorContains(t, h.m.Set("r", Revision{Params: p, Source: Pushed}), "MinScale")
	p = defaultParams(t, nil)
	p.Metric = "cpu"
	require.ErrorContains(t, h.m.Set("r", Revision{Params: p, Source: Pushed}), "Metric")
	p = defaultParams(t, nil)
	p.TargetValue = 0
	require.ErrorContains(t, h.m.Set("r", Revision{Params: p, Source: Pushed}), "TargetValue")
	require.ErrorContains(t, h.m.Set("r", Revision{Params: defaultParams(t, nil), Source: Source(7)}), "Source 7")
	require.ErrorIs(t, h.m.setServing("nope", 1), ErrUnknownRevision)
	require.ErrorContains(t, h.m.setServing("nope", -1), "serving count")

	h.set("r", defaultParams(t, nil), Pushed)
	// Update keeps the decider's state.
	p = defaultParams(t, nil)
	p.TargetValue = 1
	require.NoError(t, h.m.Set("r", Revision{Params: p, Source: Pushed}))
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 5})
	h.tick()
	if d := h.last("r"); d.Desired != 5 {
		t.Fatalf("after update: %+v, want 5 with target 1", d)
	}
	h.m.Remove("r")
	n := len(h.pub)
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 5})
	h.pokes()
	h.tick()
	if len(h.pub) != n {
		t.Fatal("published for a removed revision")
	}
	require.ErrorIs(t, h.m.SetReachable("r", true), ErrUnknownRevision)
	if _, err := New(Options{}); err == nil {
		t.Fatal("New without a Publisher accepted")
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	h := newHarness(t, Options{Registerer: reg})
	h.set("r", defaultParams(t, nil), Pushed)
	h.ready("r", 2)
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 200})
	h.tick()
	fams, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			got[f.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"zeroscale_autoscaler_desired_instances":     3,
		"zeroscale_autoscaler_requested_instances":   3,
		"zeroscale_autoscaler_serving_instances":     2,
		"zeroscale_autoscaler_stable_value":          200,
		"zeroscale_autoscaler_panic_value":           200,
		"zeroscale_autoscaler_target_value":          70,
		"zeroscale_autoscaler_panic_mode":            0,
		"zeroscale_autoscaler_panic_threshold":       2,
		"zeroscale_autoscaler_excess_burst_capacity": -211,
		"zeroscale_autoscaler_decisions_total":       2,
		"zeroscale_autoscaler_scrapes_total":         0,
		"zeroscale_autoscaler_scrape_errors_total":   0,
	}
	require.Equal(t, want, got, "gathered metrics")
	if err := New2(reg); err == nil {
		t.Fatal("registering twice succeeded")
	}
}

// New2 registers a second Multiscaler's collectors on reg.
func New2(reg prometheus.Registerer) error {
	_, err := New(Options{Registerer: reg, Publisher: PublisherFunc(func(Decision) {})})
	return err
}

func TestRunTicksAndPokesOnTheClock(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	got := make(chan Decision, 16)
	m, err := New(Options{Clock: clk, Publisher: PublisherFunc(func(d Decision) { got <- d })})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	recv := func(what string) Decision {
		t.Helper()
		select {
		case d := <-got:
			return d
		case <-time.After(10 * time.Second): // failure guard only
			t.Fatalf("no decision: %s", what)
			return Decision{}
		}
	}
	require.NoError(t, m.Set("r", Revision{Params: defaultParams(t, nil), Source: Pushed}))
	if d := recv("initial"); d.Scale != 1 {
		t.Fatalf("initial = %+v", d)
	}
	require.NoError(t, m.setServing("r", 1))
	// Both tickers (decide and scrape) must be waiting before time moves.
	require.Eventually(t, func() bool { return clk.Waiters() >= 2 }, 10*time.Second, time.Millisecond, "the loop's tickers")
	require.ErrorContains(t, m.Run(ctx), "already running")
	clk.Step(TickInterval)
	if d := recv("tick"); d.State != StateActive {
		t.Fatalf("after tick = %+v, want Active", d)
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestConcurrentUse(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	reg := prometheus.NewRegistry()
	m, err := New(Options{Clock: clk, Registerer: reg, Publisher: PublisherFunc(func(Decision) {})})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.Run(ctx) }()
	p := defaultParams(t, nil)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rev := fmt.Sprintf("r%d", w)
			for i := range 200 {
				require.NoError(t, m.Set(rev, Revision{Params: p, Source: Pushed}))
				m.Reporter().Report(rev, stats.Stat{AverageConcurrency: float64(i % 3)})
				require.NoError(t, m.SetInstances(rev, []backend.Instance{{ID: "a", Ready: true}, {ID: "b", Ready: true, Draining: true}}))
				if _, err := m.decision(rev); err != nil {
					t.Error(err)
				}
				if i%50 == 49 {
					m.Remove(rev)
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 50 {
			clk.Step(time.Second)
			if _, err := reg.Gather(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestSetInstancesCountsReadyNotDraining(t *testing.T) {
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, nil), Pushed)
	require.NoError(t, h.m.SetInstances("r", []backend.Instance{
		{ID: "a", Ready: true}, {ID: "b", Ready: true}, {ID: "c"}, {ID: "d", Ready: true, Draining: true},
		{ID: "e", Ready: true, Reserved: true},
	}))
	h.m.mu.Lock()
	ready := h.m.revs["r"].serving
	h.m.mu.Unlock()
	require.Equal(t, 2, ready, "ready: standard, serving; the reserved instance is not capacity the decider sizes")
	require.ErrorIs(t, h.m.SetInstances("nope", nil), ErrUnknownRevision)
}

func TestRestartWithRunningInstancesStartsInPanic(t *testing.T) {
	h := newHarness(t, Options{})
	require.NoError(t, h.m.Set("r", Revision{Params: defaultParams(t, nil), Source: Pushed, Serving: 5}))
	h.pokes()
	if d := h.last("r"); d.Scale != 5 || !d.Panicking {
		t.Fatalf("resumed: %+v, want 5 held in panic", d)
	}
	for range 30 { // a stable window of zero demand
		h.clk.Step(TickInterval)
		h.m.Reporter().Report("r", stats.Stat{})
		h.tick()
		if d := h.last("r"); d.Scale != 5 || !d.Panicking {
			t.Fatalf("at %v: %+v, want 5 held in panic", h.clk.Now().Sub(t0), d)
		}
	}
	h.clk.Step(TickInterval)
	h.m.Reporter().Report("r", stats.Stat{})
	h.tick()
	if d := h.last("r"); d.Scale != 2 || d.Panicking {
		t.Fatalf("after a stable window: %+v, want 5/2 = 2 out of panic", d)
	}
	require.ErrorContains(t, h.m.Set("x", Revision{Params: defaultParams(t, nil), Source: Pushed, Serving: -1}), "Revision.Serving")

	// A scraped revision has no data yet after a restart: what runs stands.
	require.NoError(t, h.m.Set("s", Revision{Params: defaultParams(t, nil), Source: Scraped, Serving: 4}))
	h.pokes()
	if d := h.last("s"); d.Scale != 4 || d.Desired != -1 || d.State != StateActive {
		t.Fatalf("resumed without data: %+v, want 4 kept, desired unknown, Active", d)
	}
}

func TestRPSMetric(t *testing.T) {
	h := newHarness(t, Options{})
	p := defaultParams(t, func(_ *Config, s *revision.Spec) { s.Scaling.Metric = revision.MetricRPS })
	require.Equal(t, 140.0, p.TargetValue, "rps target (200 × 70 %)")
	h.set("r", p, Pushed)
	h.ready("r", 1)
	// 300 requests a second, 100 of them proxied by the activator (which
	// reports those itself): 200 + 100 = 300 rps, whatever the concurrency.
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 1, RequestCount: 300, ProxiedRequestCount: 100})
	h.m.Reporter().Report("r", stats.Stat{Instance: "activator", RequestCount: 100})
	h.tick()
	if d := h.last("r"); d.Desired != 3 {
		t.Fatalf("%+v, want ceil(300/140) = 3", d)
	}
}

// A NewDecider that returns neither a Decider nor an error is logged
// like a failing one; the loop goes on without a decision.
func TestNilDeciderIsAnError(t *testing.T) {
	h := newHarness(t, Options{NewDecider: func(ScalingParams, time.Time, int) (Decider, error) { return nil, nil }})
	h.set("r", defaultParams(t, nil), Pushed)
	h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 5})
	h.clk.Step(TickInterval)
	h.tick()
	require.NoError(t, h.m.with("r", func(s *scaler) {
		if s.dec != nil || s.decisions != 0 {
			t.Errorf("decider %v, %d decisions; want none", s.dec, s.decisions)
		}
	}))
}

// TestFloorSchedule: a floor window raises min-scale on the clock,
// from zero, lead time early, and lets the revision go back to zero
// after it closes.
func TestFloorSchedule(t *testing.T) {
	// t0 is Tuesday 2023-11-14 22:13:20 UTC: the window opens 6400 s
	// later, pre-warmed from 5800 s.
	h := newHarness(t, Options{})
	p := defaultParams(t, func(_ *Config, s *revision.Spec) {
		sched, err := revision.ParseSchedule("Wed 00:00-01:00 UTC = 2")
		require.NoError(t, err)
		lead := 10 * time.Minute
		s.Scaling.FloorSchedule, s.Scaling.FloorLeadTime = &sched, &lead
	})
	h.set("r", p, Pushed)
	h.ready("r", 1)
	require.Positive(t, h.load("r", 5798, burst(0)), "idle before the window: to zero")
	require.Equal(t, 0, h.last("r").Scale)

	h.load("r", 2, burst(0)) // second 5800: the lead time starts
	d := h.last("r")
	require.Equal(t, 2, d.Scale, "pre-warmed at the lead time: %+v", d)
	h.load("r", 2, burst(0))
	require.Equal(t, StateActive, h.last("r").State, "ready once the host followed Scale")

	h.load("r", 4196, burst(0)) // up to 01:00
	require.Equal(t, 2, h.last("r").Scale, "held through the window while idle")

	zero := h.load("r", 300, burst(0))
	require.Positive(t, zero, "after the window: back to zero")
	require.LessOrEqual(t, zero, 10000+150)

	// The larger of min-scale and the schedule wins.
	h2 := newHarness(t, Options{})
	p.MinScale = 3
	h2.set("r", p, Pushed)
	h2.clk.Step(6400 * time.Second)
	h2.ready("r", 3)
	h2.tick()
	require.Equal(t, 3, h2.last("r").Scale)
}
