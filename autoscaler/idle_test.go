package autoscaler

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/stats"
)

// idleHarness is a harness whose IdleCheck is answered by the test.
type idleHarness struct {
	*harness
	asked chan context.Context
	reply chan error // nil error: the next verdict from busy
	busy  chan bool
	done  chan error
}

func newIdleHarness(t *testing.T) *idleHarness {
	ih := &idleHarness{asked: make(chan context.Context), reply: make(chan error), busy: make(chan bool, 1), done: make(chan error, 1)}
	ih.harness = newHarness(t, Options{
		IdleCheck: IdleCheckerFunc(func(ctx context.Context, rev string) (bool, error) {
			require.Equal(t, "r", rev)
			ih.asked <- ctx
			if err := <-ih.reply; err != nil {
				return false, err
			}
			return !<-ih.busy, nil
		}),
		OnIdleCheck: func(_ string, _ bool, err error) { ih.done <- err },
	})
	ih.set("r", defaultParams(t, nil), Pushed)
	ih.ready("r", 1)
	return ih
}

func (ih *idleHarness) asking() bool {
	var a bool
	require.NoError(ih.t, ih.m.with("r", func(s *scaler) { a = s.idleAsking }))
	return a
}

// idleUntilAsked runs the idle revision second by second until an idle
// check is in flight, and returns when.
func (ih *idleHarness) idleUntilAsked() time.Time {
	for i := 0; !ih.asking(); i++ {
		require.Less(ih.t, i, 600, "never asked")
		ih.load("r", 1, burst(0))
	}
	return ih.clk.Now()
}

// answer answers the check in flight and lets the loop apply it.
func (ih *idleHarness) answer(err error, busy bool) error {
	<-ih.asked
	ih.reply <- err
	if err == nil {
		ih.busy <- busy
	}
	got := <-ih.done
	ih.pokes()
	ih.ready("r", ih.last("r").Scale)
	return got
}

func TestIdleCheckVetoesScaleToZero(t *testing.T) {
	ih := newIdleHarness(t)
	first := ih.idleUntilAsked()
	require.Equal(t, 1, ih.last("r").Scale, "held while asking")
	require.NoError(t, ih.answer(nil, true))
	require.Equal(t, 1, ih.last("r").Scale, "busy: kept")

	again := ih.idleUntilAsked()
	require.GreaterOrEqual(t, again.Sub(first), 30*time.Second, "busy holds for one grace period")
	require.LessOrEqual(t, again.Sub(first), 34*time.Second)
	require.NoError(t, ih.answer(nil, false))
	require.Equal(t, 0, ih.last("r").Scale, "idle: to zero")
}

func TestIdleCheckErrorCountsAsIdle(t *testing.T) {
	ih := newIdleHarness(t)
	ih.idleUntilAsked()
	boom := errors.New("connection refused")
	require.ErrorIs(t, ih.answer(boom, false), boom)
	require.Equal(t, 0, ih.last("r").Scale)
}

// TestIdleCheckTimeout: a check that does not answer is cancelled after
// the timeout on the Multiscaler's clock, and counts as idle.
func TestIdleCheckTimeout(t *testing.T) {
	ih := newIdleHarness(t)
	ih.idleUntilAsked()
	ctx := <-ih.asked
	require.Eventually(t, ih.clk.HasWaiters, 10*time.Second, time.Millisecond, "the timeout's timer")
	ih.clk.Step(DefaultIdleCheckTimeout)
	<-ctx.Done()
	ih.reply <- ctx.Err()
	require.ErrorIs(t, <-ih.done, context.Canceled)
	ih.pokes()
	require.Equal(t, 0, ih.last("r").Scale)
}

// TestIdleCheckDroppedOnTraffic: a request while the check runs makes
// the revision active; the late answer is dropped.
func TestIdleCheckDroppedOnTraffic(t *testing.T) {
	ih := newIdleHarness(t)
	ih.idleUntilAsked()
	ih.m.Reporter().Report("r", stats.Stat{AverageConcurrency: 50, RequestCount: 50})
	ih.clk.Step(TickInterval)
	ih.tick()
	require.Equal(t, StateActive, ih.last("r").State)
	require.NoError(t, ih.answer(nil, false))
	require.Equal(t, 1, ih.last("r").Scale, "the stale idle verdict is not applied")
	require.False(t, ih.asking())
}

func TestIdleCheckTimeoutValidated(t *testing.T) {
	_, err := New(Options{Publisher: PublisherFunc(func(Decision) {}), IdleCheckTimeout: 2 * time.Minute})
	require.ErrorContains(t, err, "IdleCheckTimeout")
}
