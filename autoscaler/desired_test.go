package autoscaler

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
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
	return newHarness(t, Options{NewDecider: func(revision.ScalingParams, time.Time, int) (Decider, error) { return &s, nil }})
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

// The host's default progress deadline (revision.Config, which the root
// Server takes as Options.Config) bounds activating when the revision
// sets none.
func TestActivationTimeoutFromHostConfig(t *testing.T) {
	h := newHarness(t, Options{})
	h.set("r", defaultParams(t, func(c *revision.Config, _ *revision.Spec) { c.ProgressDeadline = 50 * time.Second }), Pushed)
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
