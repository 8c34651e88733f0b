package control

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// rev is one running revision: it carries the autoscaler's decisions to
// the engine and the engine's snapshots to the activator and the
// autoscaler. It holds the revision's state once; Status copies it.
type rev struct {
	c        *Controller
	rev      revision.Revision
	name     string
	idlePath string   // zeroscale.dev/idle-check-path, "" = none
	frz      *standby // zeroscale.dev/idle-mode: freeze, else nil

	// scaleCtx ends when Remove begins (no more Scale calls); watchCtx
	// when the revision is gone (no more snapshots).
	scaleCtx    context.Context
	stopScaling context.CancelFunc
	watchCtx    context.Context
	stopWatch   context.CancelFunc
	want        chan target   // the newest target, capacity 1
	pushMu      sync.Mutex    // one target computed and sent at a time
	reserve     *reserve      // idle-mode reserve's hook, nil otherwise
	watched     chan struct{} // closed once the watch closed
	gone        chan struct{} // closed once Remove finished

	started  atomic.Bool // Add completed
	removing atomic.Bool // Remove began

	mu        sync.Mutex
	decision  autoscaler.Decision // the last one; Revision "" before any
	applied   int                 // the scale the engine last accepted, -1 before any
	capped    bool                // the last decision was above the engine's cap
	scaleErr  error               // the engine's last refusal, nil once a Scale succeeds
	instances []backend.Instance  // the watch's latest snapshot
	serving   int                 // of instances
	ready     bool                // has had a serving instance (or starts at zero)
	scaleUpAt time.Time           // when a scale from zero was decided
	failing   error               // the crash loop the activator was told of
	pushed    target              // the last target sent to the scale loop
	frozen    bool                // frozen (or being frozen) instead of at zero
}

func newRev(c *Controller, r revision.Revision) *rev {
	rv := &rev{
		c: c, rev: r, name: r.Name(), idlePath: r.Spec().Scaling.IdleCheckPath,
		want:    make(chan target, 1),
		watched: make(chan struct{}),
		gone:    make(chan struct{}),
		applied: -1,
	}
	rv.scaleCtx, rv.stopScaling = context.WithCancel(c.ctx)
	rv.watchCtx, rv.stopWatch = context.WithCancel(c.ctx)
	return rv
}

// stop ends both of the revision's goroutines.
func (r *rev) stop() {
	r.stopScaling()
	r.stopWatch()
}

// push hands the target for the latest decision and snapshot to the
// scale loop: newest wins, and it never blocks (pushMu: emptying the
// slot and sending cannot race with another push). With always false
// it sends only a target that changed. Nothing is sent before the
// first decision.
func (r *rev) push(always bool) {
	r.pushMu.Lock()
	defer r.pushMu.Unlock()
	r.mu.Lock()
	t := target{n: r.decision.Scale, reserved: -1}
	if r.reserve != nil {
		t = r.reserve.target(t.n, r.c.limit, r.instances)
	}
	skip := r.decision.Revision == "" || (!always && t == r.pushed)
	r.pushed = t
	r.mu.Unlock()
	if skip {
		return
	}
	select {
	case <-r.want:
	default:
	}
	r.want <- t
}

// decide records d and hands it to the scale loop.
func (r *rev) decide(d autoscaler.Decision) {
	r.mu.Lock()
	prev := r.decision
	r.decision = d
	// A thaw is not a start: it has no cold-start phases to measure.
	fromZero := prev.Scale == 0 && d.Scale > 0 && r.serving == 0 && !r.frozen
	if fromZero {
		r.scaleUpAt = d.Time
	}
	r.mu.Unlock()
	if fromZero {
		r.c.act.ScaleFromZero(r.name, d.Time) // ends the held requests' scale-decision phase
	}
	r.push(true)
	if d.State == autoscaler.StateInactive && d.Reason == autoscaler.ReasonTimedOut && prev.Reason != autoscaler.ReasonTimedOut {
		r.c.emit(Event{Kind: EventTimedOut, Revision: r.name, Reason: d.Reason,
			Message: "no instance became ready within the progress deadline"})
	}
}

// scaleLoop calls Backend.Scale with each new decided scale, capped at
// the engine's limit, retrying transient failures with back-off until a
// newer scale supersedes them.
func (r *rev) scaleLoop() {
	c := r.c
	var pending target
	have := false
	backoff := MinRetry
	defer r.stopStandby()
	for {
		if !have {
			select {
			case <-r.scaleCtx.Done():
				return
			case pending = <-r.want:
				have = true
			case <-r.standbyExpired():
				r.expireStandby()
				pending, have = target{n: 0, reserved: -1}, true
			}
		}
		if r.beforeScale(pending.n) {
			have = false
			continue
		}
		n := pending.n
		capped := c.limit > 0 && n > c.limit
		if capped {
			n = c.limit // capped, never refused
		}
		r.noteCap(capped, pending.n)
		err := c.be.Scale(r.scaleCtx, r.name, n)
		if err == nil && pending.reserved >= 0 {
			err = r.reserve.scale(r.scaleCtx, r.name, pending.reserved)
		}
		if r.scaleCtx.Err() != nil {
			return
		}
		r.mu.Lock()
		r.scaleErr = err
		if err == nil {
			r.applied = n
		}
		r.mu.Unlock()
		if err == nil || !backend.IsTransient(err) {
			if err != nil {
				c.log.Warn("control: the engine refused a scale", "revision", r.name, "scale", n, "err", err)
				c.emit(Event{Kind: EventScaleFailed, Revision: r.name, To: n, Message: err.Error()})
			}
			have, backoff = false, MinRetry
			continue
		}
		// A timer, not Clock.After: a newer scale or the end must not
		// leave the retry's wait on the clock.
		retry := c.clock.NewTimer(backoff)
		select {
		case <-r.scaleCtx.Done():
			retry.Stop()
			return
		case pending = <-r.want:
			retry.Stop()
			backoff = MinRetry
		case <-retry.C():
			backoff = min(2*backoff, MaxRetry)
		}
	}
}

// noteCap records whether the decision is above the engine's cap, with
// an event when that starts.
func (r *rev) noteCap(capped bool, want int) {
	r.mu.Lock()
	was := r.capped
	r.capped = capped
	r.mu.Unlock()
	if capped && !was {
		r.c.emit(Event{Kind: EventScaleCapped, Revision: r.name, From: want, To: r.c.limit,
			Message: "the engine runs at most this many instances per revision (backend.InstanceLimiter)"})
	}
}

// watchLoop applies every snapshot until the watch closes. A watch
// that closes while the revision is not being removed means the engine
// lost it: it is watched again, or reported failed once the engine says
// it does not know it.
func (r *rev) watchLoop(ch <-chan []backend.Instance) {
	defer close(r.watched)
	// A crash loop changes no listed instance (Watch does not list a
	// slot in back-off), so it is looked for on a timer.
	tick := r.c.clock.NewTicker(failingCheckPeriod)
	defer tick.Stop()
	for {
		for open := true; open; {
			select {
			case snap, ok := <-ch:
				if !ok {
					open = false
					break
				}
				r.apply(snap)
			case <-tick.C():
				r.checkFailing()
			}
		}
		if r.removing.Load() || r.watchCtx.Err() != nil {
			return
		}
		err := r.c.retry(r.watchCtx, func() (err error) {
			ch, err = r.c.be.Watch(r.watchCtx, r.name)
			return err
		})
		if err != nil {
			if r.watchCtx.Err() == nil && !r.removing.Load() {
				if errors.Is(err, backend.ErrNotDeployed) {
					r.apply(nil)
				}
				r.c.emit(Event{Kind: EventFailed, Revision: r.name, Reason: ReasonWatchFailed, Message: err.Error()})
			}
			return
		}
	}
}

// apply hands one snapshot to the activator and the autoscaler and
// records it: the first serving instance makes the revision Ready, and a
// change in serving instances is an EventScaled.
func (r *rev) apply(snap []backend.Instance) {
	c := r.c
	if err := c.act.UpdateInstances(r.name, snap); err != nil {
		c.log.Debug("control: activator update", "revision", r.name, "err", err)
	}
	_ = c.ms.SetInstances(r.name, snap)

	now := c.clock.Now()
	n := countServing(snap)
	r.mu.Lock()
	prev := r.serving
	r.instances, r.serving = snap, n
	var kindEvents []Event
	if r.reserve != nil {
		kindEvents = r.reserve.observe(r.name, snap)
	}
	e := Event{Kind: EventScaled, Revision: r.name, From: prev, To: n, Time: now}
	if prev == 0 && n > 0 && !r.scaleUpAt.IsZero() {
		e.ColdStart = now.Sub(r.scaleUpAt)
		r.scaleUpAt = time.Time{}
	}
	switch {
	case n == 0 && r.removing.Load():
		e.Reason = ReasonRemoved
	case n == 0:
		e.Reason = r.decision.Reason
	}
	r.mu.Unlock()
	if prev != n {
		c.emit(e)
	}
	for _, ke := range kindEvents {
		c.emit(ke)
	}
	if r.reserve != nil {
		r.push(false) // the reserved instance's readiness moves the targets
	}
	if n > 0 {
		r.markReady("")
		r.setFailing(nil)
	}
}

// failingCheckPeriod is how often a revision that should have instances
// but has none serving asks its engine whether it is crash-looping.
const failingCheckPeriod = time.Second

// checkFailing asks the engine (a backend.StatusReporter) about a
// revision that has been scaled up but has no serving instance: when a
// slot is in back-off after crashing again on restart, the activator
// fails the revision's requests fast with what the engine said rather
// than hold them for a start that is not coming. One crash is not a
// loop: a restart may still succeed.
func (r *rev) checkFailing() {
	sr, ok := r.c.be.(backend.StatusReporter)
	if !ok {
		return
	}
	r.mu.Lock()
	wanted := r.applied > 0 && r.serving == 0
	r.mu.Unlock()
	var reason error
	if wanted {
		st, err := sr.Status(r.watchCtx, r.name)
		if err != nil {
			return // unknown: leave it as it was
		}
		for _, in := range st.CrashLooping() {
			if in.Restarts >= 1 {
				reason = errors.New(crashLoopMessage(in))
				break
			}
		}
	}
	r.setFailing(reason)
}

// setFailing tells the activator, when it changed.
func (r *rev) setFailing(reason error) {
	r.mu.Lock()
	same := (r.failing == nil) == (reason == nil) && (reason == nil || r.failing.Error() == reason.Error())
	r.failing = reason
	r.mu.Unlock()
	if !same {
		r.c.act.SetFailing(r.name, reason)
	}
}

// crashLoopMessage says how a crash-looping slot last ended, with its
// last output line.
func crashLoopMessage(in backend.InstanceStatus) string {
	msg := fmt.Sprintf("crash loop: instance %s restarted %d times", in.ID, in.Restarts)
	if e := in.LastExit; e != nil {
		msg += fmt.Sprintf(", last exit code %d (%s)", e.Code, e.Reason)
		if n := len(e.Output); n > 0 {
			msg += "; last output: " + e.Output[n-1]
		}
	}
	return msg
}

// markReady makes the revision Ready once, with an EventReady.
func (r *rev) markReady(reason string) {
	r.mu.Lock()
	was := r.ready
	r.ready = true
	r.mu.Unlock()
	if !was {
		r.c.emit(Event{Kind: EventReady, Revision: r.name, Reason: reason})
	}
}

func (r *rev) status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{
		Revision:  r.name,
		Ready:     r.ready,
		Removing:  r.removing.Load(),
		Decision:  r.decision,
		Applied:   r.applied,
		Instances: append([]backend.Instance(nil), r.instances...),
		Serving:   r.serving,
		ScaleErr:  r.scaleErr,
		Frozen:    r.frozen,
	}
	if r.capped {
		st.Cap = r.c.limit
	}
	return st
}

// countServing counts the instances of snap that take requests.
func countServing(snap []backend.Instance) int {
	n := 0
	for _, in := range snap {
		if in.Serving() {
			n++
		}
	}
	return n
}
