package control_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

func (e *env) reserveRevision(name string) revision.Revision {
	e.t.Helper()
	spec := revision.Spec{Image: "example.com/hello"}
	spec.Scaling.IdleMode = revision.IdleModeReserve
	r, err := revision.New("hello", name, 1, spec, e.clk.Now())
	require.NoError(e.t, err)
	return r
}

// kinds counts the serving instances of st by kind.
func kinds(st control.Status) (standard, reserved int) {
	for _, in := range st.Instances {
		switch {
		case !in.Serving():
		case in.Reserved:
			reserved++
		default:
			standard++
		}
	}
	return standard, reserved
}

// TestReservedInstanceSwaps: with idle-mode reserve a revision at zero
// runs one reserved instance, which serves at once; demand scales
// standard instances out, and once they serve the reserved one drains
// and retires; idle again, a reserved instance is started and serves
// before the last standard one goes. At no point does nothing serve.
func TestReservedInstanceSwaps(t *testing.T) {
	const startDelay = 2 * time.Second
	e := newEnv(t, fake.Options{StartDelay: startDelay}, nil)
	r := e.reserveRevision("hello-00001")
	name := r.Name()
	require.NoError(t, e.ctl.Add(t.Context(), r))

	// stepUntil steps the clock a second at a time until cond holds.
	stepUntil := func(msg string, limit time.Duration, cond func(st control.Status) bool) control.Status {
		t.Helper()
		var stepped time.Duration
		var st control.Status
		require.Eventually(t, func() bool {
			e.engine.Flush()
			if st = e.status(name); cond(st) {
				return true
			}
			if stepped < limit {
				e.clk.Step(time.Second)
				stepped += time.Second
			}
			return false
		}, waitFor, time.Millisecond, msg)
		return st
	}

	// Initial scale 0: a reserved instance, no standard one.
	st := stepUntil("the reserved instance serves", time.Minute, func(st control.Status) bool {
		s, res := kinds(st)
		return s == 0 && res == 1
	})
	assert.Equal(t, 0, st.Applied, "no standard instance")
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventReservedStarted)) == 1 }, waitFor, time.Millisecond)
	first := e.eventsOf(control.EventReservedStarted)[0]
	assert.Contains(t, first.Message, "reserved instance hello-00001-i")

	// It serves at once: the clock is not stepped for this request.
	code, body := e.get(name)
	require.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello-00001\n", body)

	// Demand: standard instances scale out; the reserved one stays until
	// they serve, then retires.
	e.ctl.Reporter().Report(name, stats.Stat{Instance: "activator", AverageConcurrency: 3, RequestCount: 3})
	require.Eventually(t, func() bool { return e.status(name).Decision.Scale > 0 }, waitFor, time.Millisecond)
	st = e.status(name)
	s, res := kinds(st)
	assert.Equal(t, 0, s, "standard instances are starting (start delay on the clock)")
	assert.Equal(t, 1, res, "the reserved one serves meanwhile")
	st = stepUntil("standard instances serve and the reserved one retired", time.Minute, func(st control.Status) bool {
		s, res := kinds(st)
		return s >= 1 && res == 0 && len(st.Instances) == s
	})
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventReservedRetired)) == 1 }, waitFor, time.Millisecond)
	assert.Equal(t, first.Message, e.eventsOf(control.EventReservedRetired)[0].Message, "the same instance retired")

	// Idle: the standard instances go and a reserved one comes back.
	stepUntil("a reserved instance again, no standard one", 10*time.Minute, func(st control.Status) bool {
		s, res := kinds(st)
		return s == 0 && res == 1 && len(st.Instances) == 1
	})
	require.Eventually(t, func() bool { return len(e.eventsOf(control.EventReservedStarted)) == 2 }, waitFor, time.Millisecond)
	assert.NotEqual(t, first.Message, e.eventsOf(control.EventReservedStarted)[1].Message, "a new reserved instance")
	for _, ev := range e.eventsOf(control.EventScaled) {
		assert.NotZero(t, ev.To, "nothing served after %v: %v", ev.Time, ev)
	}
	assert.Equal(t, 0, e.status(name).Applied)
}

// hidden hides the fake's optional capabilities.
type hidden struct{ backend.Backend }

// TestReserveNeedsAReserver: an engine that cannot run reserved
// instances refuses the revision at Add, naming the annotation.
func TestReserveNeedsAReserver(t *testing.T) {
	e := newEnv(t, fake.Options{}, func(b *fake.Backend) backend.Backend { return hidden{b} })
	err := e.ctl.Add(t.Context(), e.reserveRevision("hello-00001"))
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	require.ErrorIs(t, err, control.ErrCannotReserve)
	assert.ErrorContains(t, err, `zeroscale.dev/idle-mode: "reserve"`)
	assert.ErrorContains(t, err, "backend.Reserver")
	assert.Empty(t, e.ctl.Revisions())
}
