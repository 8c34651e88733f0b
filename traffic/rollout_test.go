package traffic

import (
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// rolloutRoute returns a route on a fake clock at t0 serving shop-1 at
// 100 % of the latest target of spec, and the state to evolve.
func rolloutRoute(t *testing.T, spec Spec) (*Route, *clocktesting.FakeClock, state) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	st := state{latest: map[string]string{"shop": "shop-1"}, ready: map[string]bool{"shop-1": true}}
	r := newRoute(t, RouteConfig{Clock: clk})
	update(t, r, spec, st)
	return r, clk, st
}

func ready(st state, rev string) {
	st.ready[rev] = true
	st.latest["shop"] = rev
}

func requireDefault(t *testing.T, r *Route, want ...any) {
	t.Helper()
	if got := r.Traffic().Default; !reflect.DeepEqual(got, split(want...)) {
		t.Fatalf("default split = %v, want %v", got, split(want...))
	}
}

func TestRolloutTimeline(t *testing.T) {
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}, RolloutDuration: 10 * time.Second}
	r, clk, st := rolloutRoute(t, spec)
	requireDefault(t, r, "shop-1", 100) // the first traffic ever applies at once

	ready(st, "shop-2")
	update(t, r, spec, st)
	requireDefault(t, r, "shop-1", 99, "shop-2", 1)

	// minStep 1 s; 9 s left, in min(99, 9/1) = 9 steps of round(99/9) = 11 %.
	next := r.Step(clk.Now())
	if next != t0.Add(time.Second) {
		t.Fatalf("next step at %v, want t0+1s", next.Sub(t0))
	}
	if again := r.Step(t0.Add(999 * time.Millisecond)); again != next {
		t.Fatalf("early Step moved the schedule to %v", again.Sub(t0))
	}
	requireDefault(t, r, "shop-1", 99, "shop-2", 1)
	for k := 1; k <= 8; k++ {
		clk.SetTime(next)
		next = r.Step(clk.Now())
		requireDefault(t, r, "shop-1", 99-11*k, "shop-2", 1+11*k)
		if want := t0.Add(time.Duration(k+1) * time.Second); next != want {
			t.Fatalf("step %d: next at %v, want %v", k, next.Sub(t0), want.Sub(t0))
		}
	}
	clk.SetTime(next)
	if next = r.Step(clk.Now()); !next.IsZero() {
		t.Fatalf("rollout not done: next %v", next)
	}
	requireDefault(t, r, "shop-2", 100)
	if clk.Since(t0) != 9*time.Second {
		t.Errorf("rollout took %v, want 9s", clk.Since(t0))
	}
}

func TestRolloutOnePercentSteps(t *testing.T) {
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}, RolloutDuration: 2 * time.Minute}
	r, clk, st := rolloutRoute(t, spec)
	ready(st, "shop-2")
	update(t, r, spec, st)
	// 119 s left for 99 %, so 99 steps of 1 % every 119/99 s.
	stepDur := secs(119.0 / 99)
	steps := 0
	for next := r.Step(clk.Now()); !next.IsZero(); {
		if want := clk.Now().Add(stepDur); next != want {
			t.Fatalf("step %d due at %v, want %v", steps, next.Sub(t0), want.Sub(t0))
		}
		clk.SetTime(next)
		next = r.Step(clk.Now())
		steps++
		if steps < 99 {
			requireDefault(t, r, "shop-1", 99-steps, "shop-2", 1+steps)
		}
	}
	requireDefault(t, r, "shop-2", 100)
	if steps != 99 || clk.Since(t0) != 99*stepDur {
		t.Errorf("%d steps over %v, want 99 over %v", steps, clk.Since(t0), 99*stepDur)
	}
}

func TestRolloutTagAndSplit(t *testing.T) {
	// The config gets 60 % of the default split (rolled out within it)
	// and all of its tag's; the pinned revision keeps its 40 %.
	spec := Spec{Traffic: []Target{
		{LatestRevision: true, Percent: 60, Tag: "current"},
		{RevisionName: "shop-1", Percent: 40, Tag: "stable"},
	}, RolloutDuration: 10 * time.Second}
	r, clk, st := rolloutRoute(t, spec)
	ready(st, "shop-2")
	update(t, r, spec, st)
	tr := r.Traffic()
	want := Traffic{
		Default: split("shop-1", 99, "shop-2", 1),
		Tags:    map[string][]Split{"current": split("shop-1", 99, "shop-2", 1), "stable": split("shop-1", 100)},
	}
	if !reflect.DeepEqual(tr, want) {
		t.Fatalf("traffic = %+v\nwant %+v", tr, want)
	}
	// Default: 59 % in 9 steps of round(59/9) = 7; tag: 99 % in 9 of 11.
	clk.Step(time.Second)
	r.Step(clk.Now())
	want.Default = split("shop-1", 92, "shop-2", 8)
	want.Tags["current"] = split("shop-1", 88, "shop-2", 12)
	if tr := r.Traffic(); !reflect.DeepEqual(tr, want) {
		t.Fatalf("after one step: %+v\nwant %+v", tr, want)
	}
}

// midRollout returns a route one step into rolling shop-2 out over 10 s:
// shop-1 at 88 %, shop-2 at 12 %, the clock at t0+1s.
func midRollout(t *testing.T) (*Route, *clocktesting.FakeClock, state, Spec) {
	t.Helper()
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}, RolloutDuration: 10 * time.Second}
	r, clk, st := rolloutRoute(t, spec)
	ready(st, "shop-2")
	update(t, r, spec, st)
	clk.Step(time.Second)
	r.Step(clk.Now())
	requireDefault(t, r, "shop-1", 88, "shop-2", 12)
	return r, clk, st, spec
}

func TestRolloutPercentChanges(t *testing.T) {
	r, clk, st, spec := midRollout(t)

	// Decrease: the 30 % comes off the oldest revision.
	spec.Traffic = []Target{{LatestRevision: true, Percent: 70}, {RevisionName: "shop-0", Percent: 30}}
	st.ready["shop-0"] = true
	update(t, r, spec, st)
	requireDefault(t, r, "shop-1", 58, "shop-2", 12, "shop-0", 30)

	// Increase: all of it goes to the newest.
	spec.Traffic = []Target{{LatestRevision: true, Percent: 90}, {RevisionName: "shop-0", Percent: 10}}
	update(t, r, spec, st)
	requireDefault(t, r, "shop-1", 58, "shop-2", 32, "shop-0", 10)

	// The schedule continues; step size stays 11.
	clk.Step(time.Second)
	r.Step(clk.Now())
	requireDefault(t, r, "shop-1", 47, "shop-2", 43, "shop-0", 10)

	// To 0 %: the rollout is dropped.
	spec.Traffic = []Target{{LatestRevision: true, Percent: 0, Tag: "next"}, {RevisionName: "shop-0", Percent: 100}}
	update(t, r, spec, st)
	requireDefault(t, r, "shop-0", 100)
	if next := r.Step(clk.Now()); !next.IsZero() {
		// The tag's own rollout starts fresh (no previous state): none due.
		t.Errorf("a step is still due at %v", next)
	}
}

func TestRolloutRepeatedUpdateKeepsSchedule(t *testing.T) {
	r, clk, st, spec := midRollout(t)
	clk.Step(300 * time.Millisecond)
	update(t, r, spec, st) // same latest ready revision: no restart
	requireDefault(t, r, "shop-1", 88, "shop-2", 12)
	if next := r.Step(clk.Now()); next != t0.Add(2*time.Second) {
		t.Errorf("next step at t0+%v, want t0+2s", next.Sub(t0))
	}
	// Turning rollout off finishes it at once.
	spec.RolloutDuration = 0
	update(t, r, spec, st)
	requireDefault(t, r, "shop-2", 100)
}

func TestRolloutNewerRevisionMidRollout(t *testing.T) {
	r, clk, st, spec := midRollout(t)

	clk.Step(500 * time.Millisecond)
	ready(st, "shop-3")
	update(t, r, spec, st)
	// A new rollout from the current shares: 1 % from the newest old one.
	requireDefault(t, r, "shop-1", 88, "shop-2", 11, "shop-3", 1)
	next := r.Step(clk.Now())
	if want := clk.Now().Add(time.Second); next != want {
		t.Fatalf("new rollout's first step at %v, want 1s after its start", next.Sub(clk.Now()))
	}
	// 11 %: all of shop-2's 11 goes, nothing from shop-1.
	clk.SetTime(next)
	r.Step(clk.Now())
	requireDefault(t, r, "shop-1", 88, "shop-3", 12)
	clk.Step(time.Second)
	r.Step(clk.Now())
	requireDefault(t, r, "shop-1", 77, "shop-3", 23)
}

func TestRolloutSkipped(t *testing.T) {
	// 1 %: Knative's A/B shortcut, no rollout.
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 1}, {RevisionName: "shop-1", Percent: 99}}, RolloutDuration: time.Minute}
	r, clk, st := rolloutRoute(t, spec)
	ready(st, "shop-2")
	update(t, r, spec, st)
	requireDefault(t, r, "shop-2", 1, "shop-1", 99)
	if next := r.Step(clk.Now()); !next.IsZero() {
		t.Errorf("step due at %v", next)
	}
}

func TestRolloutSteps(t *testing.T) {
	for _, tc := range []struct {
		name     string
		revs     []Split
		percent  int
		stepSize int
		want     []Split
	}{
		{"newest old first", split("a", 50, "b", 30, "c", 20), 100, 25, split("a", 50, "b", 5, "c", 45)},
		{"drains one, then the next", split("a", 50, "b", 30, "c", 20), 100, 35, split("a", 45, "c", 55)},
		{"last step", split("a", 11, "b", 89), 100, 11, split("b", 100)},
		{"capped at the share", split("a", 5, "b", 10), 15, 10, split("b", 15)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ro := &rollout{percent: tc.percent, revs: tc.revs, start: t0, next: t0, stepSize: tc.stepSize, stepDur: time.Second}
			ro.step(t0)
			if !reflect.DeepEqual(ro.revs, tc.want) {
				t.Errorf("revs = %v, want %v", ro.revs, tc.want)
			}
			if done := len(ro.revs) == 1; done != ro.next.IsZero() || done != (ro.stepSize == 0) {
				t.Errorf("done %v but next %v, step size %d", done, ro.next, ro.stepSize)
			}
		})
	}
}

func TestRolloutAdjust(t *testing.T) {
	for _, tc := range []struct {
		revs    []Split
		percent int
		want    []Split
	}{
		{split("a", 40, "b", 10), 60, split("a", 40, "b", 20)},
		{split("a", 30, "b", 10, "c", 10), 25, split("a", 5, "b", 10, "c", 10)},
		{split("a", 30, "b", 10, "c", 10), 15, split("b", 5, "c", 10)},
		{split("a", 30, "b", 10, "c", 10), 50, split("a", 30, "b", 10, "c", 10)},
	} {
		ro := &rollout{percent: 50, revs: tc.revs}
		ro.adjust(tc.percent)
		if !reflect.DeepEqual(ro.revs, tc.want) || ro.percent != tc.percent {
			t.Errorf("adjust(%d) = %v (%d), want %v", tc.percent, ro.revs, ro.percent, tc.want)
		}
	}
}

func TestRolloutPlan(t *testing.T) {
	for _, tc := range []struct {
		percent  int
		observed time.Duration // since start
		duration time.Duration
		size     int
		stepDur  time.Duration
	}{
		{100, 0, 10 * time.Second, 11, time.Second},
		{100, 0, 2 * time.Minute, 1, secs(119.0 / 99)},
		{100, 3 * time.Second, 2 * time.Minute, 3, 3 * time.Second}, // 117 s in 39 steps of round(99/39) %
		{10, 0, time.Hour, 1, secs(3599.0 / 9)},
		{100, 30 * time.Second, 10 * time.Second, 99, time.Second}, // took longer than the duration: one step
		{2, 0, 5 * time.Second, 1, 4 * time.Second},
	} {
		ro := &rollout{percent: tc.percent, start: t0}
		now := t0.Add(tc.observed)
		ro.plan(now, tc.duration)
		if ro.stepSize != tc.size || ro.stepDur != tc.stepDur || ro.next != now.Add(tc.stepDur) {
			t.Errorf("%+v: size %d every %v (next %v)", tc, ro.stepSize, ro.stepDur, ro.next.Sub(now))
		}
	}
}

// secs converts fractional seconds as plan does.
func secs(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

func TestRolloutLogs(t *testing.T) {
	var buf strings.Builder
	clk := clocktesting.NewFakeClock(t0)
	st := state{latest: map[string]string{"shop": "shop-1"}, ready: map[string]bool{"shop-1": true, "shop-2": true}}
	r := newRoute(t, RouteConfig{Clock: clk, Logger: slog.New(slog.NewTextHandler(&buf, nil))})
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}, RolloutDuration: 2 * time.Second}
	update(t, r, spec, st)
	st.latest["shop"] = "shop-2"
	update(t, r, spec, st)
	clk.SetTime(r.Step(clk.Now()))
	r.Step(clk.Now())
	for _, want := range []string{
		`msg="rollout step" route=prod/shop tag="" configuration=shop shares="[shop-1=99% shop-2=1%]"`,
		`msg="rollout done" route=prod/shop tag="" configuration=shop revision=shop-2`,
	} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, buf.String())
		}
	}
}
