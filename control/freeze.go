package control

import (
	"cmp"
	"fmt"
	"time"

	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// Frozen standby (zeroscale.dev/idle-mode: freeze): when the autoscaler
// decides 0 for a revision with serving instances, the scale loop asks
// the engine (a backend.Freezer) to freeze them instead of Scale 0. The
// engine drains them first, through the activator, so no request in
// flight is frozen mid-way. The next decision above 0 thaws them before
// it is applied: the activator holds the request that caused it only
// for the thaw, and no instance is started for it unless the decision
// asks for more than were frozen. Once the standby retention
// (zeroscale.dev/standby-retention) passes without one, the scale loop
// applies the Scale 0 the freeze stood in for. All of it runs on the
// scale loop's goroutine; only the state Status shows is under rev.mu.

// ErrCannotFreeze is returned by Add for a revision with
// zeroscale.dev/idle-mode: freeze on an engine that is not a
// backend.Freezer (Kubernetes). It wraps backend.ErrInvalidArgument.
var ErrCannotFreeze = fmt.Errorf("%w: %s: %q: the engine cannot freeze instances (it does not implement backend.Freezer); use %q or %q",
	backend.ErrInvalidArgument, revision.IdleModeAnnotation, revision.IdleModeFreeze, revision.IdleModeStop, revision.IdleModeReserve)

// standby is a freeze-mode revision's state. Scale loop only, except
// rev.frozen.
type standby struct {
	f         backend.Freezer
	retention time.Duration
	expiry    clock.Timer // running while frozen
	expired   bool        // the retention passed: apply the Scale 0
	frozenAt  time.Time
}

// newStandby returns the standby of a revision resolved to params, nil
// unless it freezes when idle, or ErrCannotFreeze.
func newStandby(be backend.Backend, params autoscaler.ScalingParams) (*standby, error) {
	if params.IdleMode != revision.IdleModeFreeze {
		return nil, nil
	}
	f, ok := be.(backend.Freezer)
	if !ok {
		return nil, ErrCannotFreeze
	}
	return &standby{f: f, retention: cmp.Or(params.StandbyRetention, revision.DefaultStandbyRetention)}, nil
}

// standbyExpired is the retention timer's channel while the revision is
// frozen, else nil (never ready).
func (r *rev) standbyExpired() <-chan time.Time {
	if r.frz == nil || r.frz.expiry == nil {
		return nil
	}
	return r.frz.expiry.C()
}

// expireStandby ends a standby that reached its retention: the scale
// loop then applies 0.
func (r *rev) expireStandby() {
	s := r.frz
	s.expiry, s.expired = nil, true
	r.setFrozen(false)
	r.c.emit(Event{Kind: EventStandbyExpired, Revision: r.name, Reason: revision.StandbyRetentionAnnotation,
		Message: fmt.Sprintf("frozen for %v without a request: stopping", r.c.clock.Since(s.frozenAt).Round(time.Millisecond))})
}

// beforeScale is the freeze mode's hook in the scale loop, called before
// n is applied: it freezes instead of a Scale 0 (true: nothing more to
// apply), and thaws before a scale above 0.
func (r *rev) beforeScale(n int) (done bool) {
	s := r.frz
	if s == nil || r.scaleCtx.Err() != nil {
		return false
	}
	r.mu.Lock()
	frozen, serving := r.frozen, r.serving
	if n == 0 && !frozen && serving > 0 && !s.expired {
		r.frozen = true // decide's fromZero knows a thaw is coming, not a start
	}
	r.mu.Unlock()
	switch {
	case n == 0 && s.expired:
		s.expired = false
		return false
	case n == 0 && frozen:
		return true // stays frozen
	case n == 0 && serving > 0:
		return r.freeze(serving)
	case n > 0 && frozen:
		r.thaw()
	}
	return false
}

// freeze freezes the revision's instances; on failure the revision is
// stopped instead (false).
func (r *rev) freeze(serving int) bool {
	c, s := r.c, r.frz
	start := c.clock.Now()
	if err := s.f.Freeze(r.scaleCtx, r.name); err != nil {
		r.setFrozen(false)
		if r.scaleCtx.Err() == nil {
			c.log.Warn("control: freeze failed; stopping instead", "revision", r.name, "err", err)
			c.emit(Event{Kind: EventScaleFailed, Revision: r.name, Reason: ReasonFreezeFailed, Message: err.Error()})
		}
		return false
	}
	s.frozenAt = c.clock.Now()
	s.expiry = c.clock.NewTimer(s.retention)
	c.emit(Event{Kind: EventFrozen, Revision: r.name, From: serving,
		Message: fmt.Sprintf("%d instances frozen in %v; stopped after %v without a request", serving, s.frozenAt.Sub(start), s.retention)})
	return true
}

// thaw resumes the frozen instances before a scale above 0 is applied;
// a failure is reported, and the scale then starts what is missing.
func (r *rev) thaw() {
	c, s := r.c, r.frz
	if s.expiry != nil {
		s.expiry.Stop()
		s.expiry = nil
	}
	start := c.clock.Now()
	err := s.f.Thaw(r.scaleCtx, r.name)
	r.setFrozen(false)
	if err != nil {
		if r.scaleCtx.Err() == nil {
			c.log.Warn("control: thaw failed", "revision", r.name, "err", err)
			c.emit(Event{Kind: EventScaleFailed, Revision: r.name, Reason: ReasonThawFailed, Message: err.Error()})
		}
		return
	}
	c.emit(Event{Kind: EventThawed, Revision: r.name,
		Message: fmt.Sprintf("thawed in %v after %v frozen", c.clock.Since(start), start.Sub(s.frozenAt).Round(time.Millisecond))})
}

func (r *rev) setFrozen(v bool) {
	r.mu.Lock()
	r.frozen = v
	r.mu.Unlock()
}

// stopStandby stops the retention timer when the revision goes.
func (r *rev) stopStandby() {
	if r.frz != nil && r.frz.expiry != nil {
		r.frz.expiry.Stop()
	}
}
