package zeroscale

import (
	"sync/atomic"
	"time"

	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
)

// rev is what the Server keeps of a revision on top of the
// control.Controller, which owns its life: which service owns the name
// (revision names are unique across services) and when it last got a
// request (for "NoTraffic for 90 s").
type rev struct {
	svc         *service
	lastRequest atomic.Int64 // unix nanos of the last request routed here
	requests    atomic.Int64 // requests routed here, for the status page's rate
	removing    atomic.Bool  // Delete or Shutdown is removing it
}

// onControlEvent turns the Controller's events into the Server's:
// revision readiness and failure go to the service's Configuration (and
// its route), scaling to Events. It runs on the Controller's goroutines
// (or Add's, for a revision that starts at zero) and never waits long:
// at most for svc.mu, which no holder keeps while waiting for a
// Controller goroutine.
func (s *Server) onControlEvent(e control.Event) {
	v, ok := s.revs.Load(e.Revision)
	if !ok {
		return
	}
	rv := v.(*rev)
	svc := rv.svc
	switch e.Kind {
	case control.EventScaled:
		out := Event{Kind: EventScaled, Service: svc.name, Revision: e.Revision, From: e.From, To: e.To,
			ColdStart: e.ColdStart, Reason: Reason(e.Reason), Time: e.Time}
		if e.To == 0 && e.Reason != control.ReasonRemoved {
			if last := rv.lastRequest.Load(); last > 0 {
				out.Idle = e.Time.Sub(time.Unix(0, last))
			}
		}
		s.emit(out)
	case control.EventReady:
		if e.Reason == control.ReasonInitialScaleZero {
			// Within Apply, which holds svc.mu and updates the route.
			_ = svc.conf.MarkReady(e.Revision)
		} else if st, _, err := svc.conf.State(e.Revision); err == nil && st == revision.StateUnknown {
			svc.mu.Lock()
			_ = svc.conf.MarkReady(e.Revision)
			s.updateRoute(svc)
			svc.mu.Unlock()
		} else {
			return
		}
		s.emit(Event{Kind: EventRevisionReady, Service: svc.name, Revision: e.Revision, Reason: Reason(e.Reason), Time: e.Time})
	case control.EventTimedOut, control.EventFailed:
		if st, _, err := svc.conf.State(e.Revision); err == nil && st != revision.StateFailed {
			_ = svc.conf.MarkFailed(e.Revision, e.Message)
			s.setPending(svc)
			s.emit(Event{Kind: EventRevisionFailed, Service: svc.name, Revision: e.Revision, Reason: Reason(e.Reason), Message: e.Message, Time: e.Time})
		}
	case control.EventScaleFailed:
		if !rv.removing.Load() {
			s.emit(Event{Kind: EventScaleFailed, Service: svc.name, Revision: e.Revision, To: e.To, Message: e.Message, Time: e.Time})
		}
	case control.EventScaleCapped:
		s.emit(Event{Kind: EventScaleCapped, Service: svc.name, Revision: e.Revision, From: e.From, To: e.To, Message: e.Message, Time: e.Time})
	case control.EventIdleBusy:
		s.emit(Event{Kind: EventIdleBusy, Service: svc.name, Revision: e.Revision, Reason: Reason(e.Reason), Message: e.Message, Time: e.Time})
	case control.EventIdleCheckFailed:
		s.emit(Event{Kind: EventIdleCheckFailed, Service: svc.name, Revision: e.Revision, Reason: Reason(e.Reason), Message: e.Message, Time: e.Time})
	case control.EventFrozen:
		s.emit(Event{Kind: EventFrozen, Service: svc.name, Revision: e.Revision, From: e.From, Message: e.Message, Time: e.Time})
	case control.EventThawed:
		s.emit(Event{Kind: EventThawed, Service: svc.name, Revision: e.Revision, Message: e.Message, Time: e.Time})
	case control.EventStandbyExpired:
		s.emit(Event{Kind: EventStandbyExpired, Service: svc.name, Revision: e.Revision, Reason: Reason(e.Reason), Message: e.Message, Time: e.Time})
	case control.EventReservedStarted, control.EventReservedRetired:
		kind := EventReservedStarted
		if e.Kind == control.EventReservedRetired {
			kind = EventReservedRetired
		}
		s.emit(Event{Kind: kind, Service: svc.name, Revision: e.Revision, Message: e.Message, Time: e.Time})
	}
}
