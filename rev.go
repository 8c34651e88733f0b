package zeroscale

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// The back-off between retries of a transient backend.Scale failure
// doubles from minScaleRetry to maxScaleRetry.
const (
	minScaleRetry = 100 * time.Millisecond
	maxScaleRetry = 5 * time.Second
)

// rev is one running revision: it carries the autoscaler's decisions to
// the backend and the backend's instances to the activator and the
// autoscaler.
type rev struct {
	s   *Server
	svc *service
	r   revision.Revision

	ctx    context.Context // ends when the revision is removed
	cancel context.CancelFunc
	want   chan int // newest desired scale, capacity 1
	// watched is closed when the backend closed the revision's watch:
	// it was removed and every instance stopped.
	watched chan struct{}

	lastRequest atomic.Int64 // unix nanos of the last request routed here
	removing    atomic.Bool  // Delete or Shutdown is removing it

	mu        sync.Mutex
	decision  autoscaler.Decision
	decided   bool
	instances []backend.Instance // the watch's latest snapshot
	scaleUpAt time.Time          // when a scale from zero was decided
	scaleErr  error
}

func newRev(s *Server, svc *service, r revision.Revision) *rev {
	ctx, cancel := context.WithCancel(s.ctx)
	return &rev{
		s: s, svc: svc, r: r, ctx: ctx, cancel: cancel,
		want:    make(chan int, 1),
		watched: make(chan struct{}),
	}
}

// publish is the Multiscaler's Publisher: it records d and hands its
// scale to the revision's scale loop without blocking.
func (s *Server) publish(d autoscaler.Decision) {
	v, ok := s.revs.Load(d.Revision)
	if !ok {
		return
	}
	rv := v.(*rev)
	rv.mu.Lock()
	prev := 0
	if rv.decided {
		prev = rv.decision.Scale
	}
	rv.decision, rv.decided = d, true
	if prev == 0 && d.Scale > 0 && serving(rv.instances) == 0 {
		rv.scaleUpAt = d.Time
	}
	rv.mu.Unlock()
	// Newest wins: Publish calls come one at a time, so draining an
	// unread value and sending cannot race with another sender.
	select {
	case <-rv.want:
	default:
	}
	rv.want <- d.Scale
	if d.State == autoscaler.StateInactive && d.Reason == autoscaler.ReasonTimedOut {
		if st, _, err := rv.svc.conf.State(d.Revision); err == nil && st != revision.StateFailed {
			_ = rv.svc.conf.MarkFailed(d.Revision, "no instance became ready within the progress deadline")
			s.emit(Event{Kind: EventRevisionFailed, Service: rv.svc.name, Revision: d.Revision, Reason: d.Reason})
		}
	}
}

// scaleLoop calls backend.Scale with each new desired scale, retrying
// transient failures with back-off until a newer scale supersedes them.
func (rv *rev) scaleLoop() {
	name := rv.r.Name()
	pending := -1
	backoff := minScaleRetry
	for {
		if pending < 0 {
			select {
			case <-rv.ctx.Done():
				return
			case pending = <-rv.want:
			}
		}
		n := pending
		if limit := backend.MaxInstances(rv.s.backend); limit > 0 {
			n = min(n, limit) // capped, never refused (the engine's cap)
		}
		err := rv.s.backend.Scale(rv.ctx, name, n)
		rv.mu.Lock()
		rv.scaleErr = err
		rv.mu.Unlock()
		if err == nil || !backend.IsTransient(err) || rv.ctx.Err() != nil {
			if err != nil && rv.ctx.Err() == nil && !rv.removing.Load() {
				rv.s.emit(Event{Kind: EventScaleFailed, Service: rv.svc.name, Revision: name, Message: err.Error()})
			}
			pending, backoff = -1, minScaleRetry
			continue
		}
		// A timer, not Clock.After: a newer scale or the end must not
		// leave the retry's wait on the clock.
		retry := rv.s.o.Clock.NewTimer(backoff)
		select {
		case <-rv.ctx.Done():
			retry.Stop()
			return
		case pending = <-rv.want:
			retry.Stop()
			backoff = minScaleRetry
		case <-retry.C():
			backoff = min(2*backoff, maxScaleRetry)
		}
	}
}

// onSnapshot applies one backend.Watch snapshot: the activator's
// instances, the autoscaler's ready count, the revision's readiness, and
// a scaling event.
func (rv *rev) onSnapshot(snap []backend.Instance) {
	s, name := rv.s, rv.r.Name()
	if err := s.act.UpdateInstances(name, snap); err != nil {
		s.o.Logger.Debug("activator update", "revision", name, "err", err)
	}
	_ = s.ms.SetInstances(name, snap)

	now := s.o.Clock.Now()
	ready := serving(snap)
	rv.mu.Lock()
	prev := serving(rv.instances)
	rv.instances = snap
	e := Event{Kind: EventScaled, Service: rv.svc.name, Revision: name, From: prev, To: ready, Time: now}
	if prev == 0 && ready > 0 && !rv.scaleUpAt.IsZero() {
		e.ColdStart = now.Sub(rv.scaleUpAt)
		rv.scaleUpAt = time.Time{}
	}
	if ready == 0 && rv.removing.Load() {
		e.Reason = "Removed"
	} else if ready == 0 && rv.decided {
		e.Reason = rv.decision.Reason
		if last := rv.lastRequest.Load(); last > 0 {
			e.Idle = now.Sub(time.Unix(0, last))
		}
	}
	rv.mu.Unlock()

	if ready > 0 {
		if st, _, err := rv.svc.conf.State(name); err == nil && st == revision.StateUnknown {
			rv.svc.mu.Lock()
			_ = rv.svc.conf.MarkReady(name)
			s.updateRoute(rv.svc)
			rv.svc.mu.Unlock()
			s.emit(Event{Kind: EventRevisionReady, Service: rv.svc.name, Revision: name})
		}
	}
	if prev != ready {
		s.emit(e)
	}
}

// serving counts the instances of snap that take requests: ready and
// not draining.
func serving(snap []backend.Instance) int {
	n := 0
	for _, in := range snap {
		if in.Serving() {
			n++
		}
	}
	return n
}
