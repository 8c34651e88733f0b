package autoscaler

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// scripted is a Decider that returns its recommendations in order, the
// last one from then on.
type scripted []Recommendation

func (s *scripted) Decide(time.Time, Observed) Recommendation {
	r := (*s)[0]
	if len(*s) > 1 {
		*s = (*s)[1:]
	}
	return r
}

func scriptedHarness(t *testing.T, recs ...Recommendation) *harness {
	s := scripted(recs)
	return newHarness(t, Options{NewDecider: func(ScalingParams, time.Time, int) (Decider, error) { return &s, nil }})
}

// A decider that stops knowing (−1) leaves the last known desired scale
// in the published decision, as Knative's PodAutoscaler status does.
func TestUnknownDesiredKeepsLastKnown(t *testing.T) {
	h := scriptedHarness(t,
		Recommendation{DesiredScale: 3, ExcessBurstCapacity: 5},
		Recommendation{DesiredScale: -1, ExcessBurstCapacity: 5})
	h.set("r", defaultParams(t, nil), Pushed)
	h.ready("r", 3)
	h.clk.Step(TickInterval)
	h.tick()
	d := h.last("r")
	require.Equal(t, 3, d.Desired)
	require.False(t, d.ActivatorInPath)

	h.clk.Step(TickInterval)
	h.tick()
	d = h.last("r")
	require.Equal(t, 3, d.Desired, "unknown published over the last known desired scale")
	require.Equal(t, 3, d.Scale)
	require.False(t, d.ActivatorInPath)
}

// Before anything is known the activator fronts the revision, whatever
// its state and burst capacity: traffic goes straight to instances only
// when they are wanted and have capacity to spare.
func TestActivatorInPathUntilDesiredKnownPositive(t *testing.T) {
	h := scriptedHarness(t,
		Recommendation{DesiredScale: -1, ExcessBurstCapacity: 0},
		Recommendation{DesiredScale: 2, ExcessBurstCapacity: 0},
		Recommendation{DesiredScale: 2, ExcessBurstCapacity: -1})
	h.set("r", defaultParams(t, nil), Pushed)
	d := h.last("r")
	require.Equal(t, StateActivating, d.State)
	require.Equal(t, -1, d.Desired)
	require.True(t, d.ActivatorInPath, "an activating revision of unknown scale served directly")

	h.clk.Step(TickInterval)
	h.tick()
	require.False(t, h.last("r").ActivatorInPath)
	h.clk.Step(TickInterval)
	h.tick()
	require.True(t, h.last("r").ActivatorInPath, "negative excess burst capacity")
}

// The host's default progress deadline (Config, which the root
// Server takes as Options.Config) bounds activating when the revision
// sets none.
func TestActivationTimeoutFromHostConfig(t *testing.T) {
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, func(c *Config, _ *revision.Spec) { c.ProgressDeadline = 50 * time.Second }), Pushed)
	var zeroAt time.Duration
	for i := 0; i < 100 && zeroAt == 0; i++ {
		h.clk.Step(TickInterval)
		h.tick()
		if h.last("r").Scale == 0 {
			zeroAt = h.clk.Now().Sub(t0)
		}
	}
	require.Greater(t, zeroAt, 80*time.Second)
	require.LessOrEqual(t, zeroAt, 82*time.Second)
	require.Equal(t, ReasonTimedOut, h.last("r").Reason)
}

// Knative's SKS probe: an inactive revision goes to zero only once its
// requests are confirmed to reach the activator; a probe that never
// passes holds the scale-down for at most ActivatorProbeTimeout.
func TestScaleToZeroWaitsForActivatorInPath(t *testing.T) {
	var calls atomic.Int64
	// run is harness.load for up to 300 s with demand in the first 5 s.
	run := func(tbc float64, probe func(context.Context, string) error, passes bool) (zeroAt int) {
		h := newHarness(t, Options{ActivatorProbe: probe})
		h.set("r", defaultParams(t, func(c *Config, _ *revision.Spec) { c.TargetBurstCapacity = tbc }), Pushed)
		h.ready("r", 1)
		calls.Store(0)
		zeroAt = -1
		for sec := 1; sec <= 300 && zeroAt < 0; sec++ {
			h.clk.Step(time.Second)
			if h.last("r").Scale > 0 && sec <= 5 {
				h.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 1, RequestCount: 1})
			}
			if sec%2 == 0 {
				h.tick()
			}
			if passes {
				// A passing probe's goroutine confirms before the next
				// decision (it runs on real sockets in a host).
				require.Eventually(t, func() bool {
					h.m.mu.Lock()
					defer h.m.mu.Unlock()
					s := h.m.revs["r"]
					return s.inPath == nil || s.inPath.done
				}, 10*time.Second, time.Millisecond)
			}
			h.ready("r", h.last("r").Scale)
			if h.last("r").Scale == 0 {
				zeroAt = sec
			}
		}
		return zeroAt
	}
	baseline := run(211, nil, false)
	require.Positive(t, baseline)

	ok := func(context.Context, string) error { calls.Add(1); return nil }
	got := run(211, ok, true)
	require.Positive(t, got)
	// One decision later: the probe starts when the revision may go.
	require.Equal(t, baseline+int(TickInterval/time.Second), got)
	require.Positive(t, calls.Load())

	failing := func(context.Context, string) error {
		calls.Add(1)
		return errors.New("the ingress still routes to the instances")
	}
	got = run(211, failing, false)
	// Without the probe the fast path goes to zero a few seconds after
	// going inactive; with a failing one, only after the 45 s timeout.
	require.GreaterOrEqual(t, got, baseline+40)
	require.LessOrEqual(t, got, baseline+50)

	// Target burst capacity −1 keeps the activator in the path: no probe.
	// Its own counter: the failing run's probe goroutine may still make
	// one last call after that run returned (its context ends with the
	// harness's cleanup).
	var tbcCalls atomic.Int64
	got = run(-1, func(context.Context, string) error {
		tbcCalls.Add(1)
		return errors.New("the ingress still routes to the instances")
	}, false)
	require.Zero(t, tbcCalls.Load())
	require.Positive(t, got)
}
