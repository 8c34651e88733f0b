package traffic

import (
	"math"
	"slices"
	"time"
)

// Gradual rollout, as Knative's pkg/reconciler/route/traffic/rollout.go
// does it. Each (tag, configuration) pair whose latestRevision target
// carries P > 1 percent has a rollout: its share P split over revisions,
// oldest first, the newest last. When the configuration's latest ready
// revision changes, the new one starts at 1 %, taken from the newest old
// revision that still has traffic; then, every step duration, step size
// percent moves to the newest revision, again taken from the newest old
// revisions first, until it holds all of P.

// rolloutKey identifies a rollout: the default split (tag "") or one tag,
// and the configuration whose latest ready revision it follows.
type rolloutKey struct {
	tag, config string
}

// rollout is the traffic state of one rolloutKey.
type rollout struct {
	percent int
	revs    []Split // oldest first; sums to percent

	// Set while len(revs) > 1. start is when the newest revision got its
	// first 1 %; next, stepSize and stepDur are planned right after.
	start    time.Time
	next     time.Time
	stepSize int
	stepDur  time.Duration
}

// goal is what a rolloutKey should converge to: revision at percent.
type goal struct {
	revision string
	percent  int
}

func settled(g goal) *rollout {
	return &rollout{percent: g.percent, revs: []Split{{Revision: g.revision, Percent: g.percent}}}
}

func (ro *rollout) clone() *rollout {
	c := *ro
	c.revs = slices.Clone(ro.revs)
	return &c
}

// goals lists the rolloutKeys of resolved targets: for the default split,
// each configuration followed by a latestRevision target with a non-zero
// share; for each tag on a latestRevision target, its configuration at
// 100 % (a tag route is all its target's).
func goals(targets []resolved) map[rolloutKey]goal {
	out := map[rolloutKey]goal{}
	for _, t := range targets {
		if t.config == "" {
			continue
		}
		if p := latestPercent(targets, t.config); p > 0 {
			out[rolloutKey{config: t.config}] = goal{revision: t.revision, percent: p}
		}
		if t.tag != "" {
			out[rolloutKey{tag: t.tag, config: t.config}] = goal{revision: t.revision, percent: 100}
		}
	}
	return out
}

// advance moves the rollouts prev towards goals at now and returns the
// new state, leaving prev untouched, and the earliest time a step is due
// (zero if none). duration ≤ 0 turns gradual rollout off: every goal
// applies at once, as does a key with no previous state or a share of
// 1 %.
func advance(prev map[rolloutKey]*rollout, gs map[rolloutKey]goal, now time.Time, duration time.Duration) (map[rolloutKey]*rollout, time.Time) {
	out := make(map[rolloutKey]*rollout, len(gs))
	var next time.Time
	for k, g := range gs {
		p, ok := prev[k]
		if duration <= 0 || !ok || g.percent <= 1 {
			out[k] = settled(g)
			continue
		}
		ro := p.clone().toward(g, now)
		// Knative plans the steps when the ingress first reports ready
		// after the rollout started; our routing table is swapped
		// synchronously, so that is now, and the first step counts as
		// Knative's minimum of one second.
		if !ro.start.IsZero() && ro.stepSize == 0 {
			ro.plan(now, duration)
		}
		out[k] = ro
		if len(ro.revs) > 1 && (next.IsZero() || ro.next.Before(next)) {
			next = ro.next
		}
	}
	return out, next
}

// toward is Knative's stepConfig: ro (a private copy of the previous
// state) adjusted to g's percent, then either stepped (same newest
// revision) or restarted with g's revision at 1 %.
func (ro *rollout) toward(g goal, now time.Time) *rollout {
	if len(ro.revs) == 0 {
		return settled(g)
	}
	ro.adjust(g.percent)
	newest := ro.revs[len(ro.revs)-1]
	if newest.Revision == g.revision {
		if len(ro.revs) == 1 {
			return settled(g)
		}
		ro.step(now)
		return ro
	}
	// A new latest ready revision, possibly mid-rollout: start over from
	// the current shares, with 1 % from the newest revision that has any.
	for i := len(ro.revs) - 1; i >= 0; i-- {
		if ro.revs[i].Percent > 0 {
			ro.revs[i].Percent--
			break
		}
	}
	ro.revs = slices.DeleteFunc(ro.revs, func(s Split) bool { return s.Percent == 0 })
	ro.revs = append(ro.revs, Split{Revision: g.revision, Percent: 1})
	ro.start, ro.next, ro.stepSize, ro.stepDur = now, time.Time{}, 0, 0
	return ro
}

// adjust is Knative's adjustPercentage: a larger share goes entirely to
// the newest revision; a smaller one is taken from the oldest first.
func (ro *rollout) adjust(percent int) {
	diff := percent - ro.percent
	ro.percent = percent
	switch {
	case diff > 0:
		ro.revs[len(ro.revs)-1].Percent += diff
	case diff < 0:
		cut := -diff
		i := 0
		for ; cut > 0 && i < len(ro.revs); i++ {
			if ro.revs[i].Percent > cut {
				ro.revs[i].Percent -= cut
				break
			}
			cut -= ro.revs[i].Percent
		}
		ro.revs = ro.revs[i:]
	}
}

// plan is Knative's computeProperties: the first 1 % took
// minStep = max(1 s, ceil(now − start)); the rest of the duration,
// d = max(1 s, duration − minStep), is cut into
// min(percent − 1, max(1, d / minStep)) steps of
// round((percent − 1) / steps) percent each.
func (ro *rollout) plan(now time.Time, duration time.Duration) {
	minStep := math.Max(1, math.Ceil(now.Sub(ro.start).Seconds()))
	d := math.Max(1, duration.Seconds()-minStep)
	steps := math.Max(1, d/minStep)
	rest := float64(ro.percent - 1)
	steps = math.Min(steps, rest)
	ro.stepSize = int(math.Round(rest / steps))
	ro.stepDur = time.Duration(d / steps * float64(time.Second))
	ro.next = now.Add(ro.stepDur)
}

// step is Knative's stepRevisions: once due, move stepSize percent to
// the newest revision, taking it from the newest old revisions first and
// dropping those left at 0 %; the newest is capped at the whole share.
// With one revision left the rollout is over.
func (ro *rollout) step(now time.Time) {
	if ro.stepSize == 0 || now.Before(ro.next) || len(ro.revs) < 2 {
		return
	}
	last := len(ro.revs) - 1
	newest := ro.revs[last]
	keep := last // old revisions [0, keep) keep some traffic
	for remaining := ro.stepSize; remaining > 0 && keep > 0; {
		old := &ro.revs[keep-1]
		if old.Percent > remaining {
			old.Percent -= remaining
			break
		}
		remaining -= old.Percent
		keep--
	}
	newest.Percent = min(newest.Percent+ro.stepSize, ro.percent)
	ro.revs = append(ro.revs[:keep], newest)
	if len(ro.revs) > 1 {
		ro.next = now.Add(ro.stepDur)
		return
	}
	ro.start, ro.next, ro.stepSize, ro.stepDur = time.Time{}, time.Time{}, 0, 0
}
