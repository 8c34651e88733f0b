package zeroscale

import (
	"fmt"
	"time"
)

// EventKind says what an Event reports.
type EventKind int

// Kinds of Event.
const (
	// EventScaled: the number of ready instances of a revision changed
	// (From → To). ColdStart is set for a start from zero, Idle for a
	// scale to zero.
	EventScaled EventKind = iota
	// EventRevisionCreated: Apply stamped a new revision.
	EventRevisionCreated
	// EventRevisionReady: a revision's first instance became ready.
	EventRevisionReady
	// EventRevisionFailed: a revision failed (deploy error, never ready).
	EventRevisionFailed
	// EventTrafficChanged: a service's traffic split changed.
	EventTrafficChanged
	// EventScaleFailed: the backend refused a scale to To (Message says
	// why).
	EventScaleFailed
	// EventScaleCapped: the autoscaler wants From instances, more than
	// the backend runs per revision; the revision runs To.
	EventScaleCapped
	// EventIdleBusy: the idle check (zeroscale.dev/idle-check-path)
	// said busy: the revision keeps its instance one more grace period.
	EventIdleBusy
	// EventIdleCheckFailed: the idle check failed (Message says why);
	// it counted as idle.
	EventIdleCheckFailed
	// EventFrozen: an idle revision's instances (From) were frozen
	// instead of stopped (zeroscale.dev/idle-mode: freeze).
	EventFrozen
	// EventThawed: a request thawed the frozen instances (Message says
	// how long that took).
	EventThawed
	// EventStandbyExpired: a frozen revision had no request for its
	// zeroscale.dev/standby-retention; its instances are stopped.
	EventStandbyExpired
	// EventReservedStarted: a reserved instance (zeroscale.dev/idle-mode
	// reserve) serves; Message names it.
	EventReservedStarted
	// EventReservedRetired: the reserved instance that served no longer
	// does (standard instances took over, or it crashed); Message names
	// it.
	EventReservedRetired
)

var kindNames = [...]string{"Scaled", "RevisionCreated", "RevisionReady", "RevisionFailed", "TrafficChanged", "ScaleFailed", "ScaleCapped", "IdleBusy", "IdleCheckFailed",
	"Frozen", "Thawed", "StandbyExpired", "ReservedStarted", "ReservedRetired"}

// String returns the kind's name, e.g. "Scaled".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something that happened to a service, for humans: the
// quickstart prints them. String renders it as one line.
type Event struct {
	Kind     EventKind
	Time     time.Time
	Service  string
	Revision string
	// From and To are serving instances before and after
	// (EventScaled); the wanted and the capped scale
	// (EventScaleCapped); To is the refused scale (EventScaleFailed).
	From, To int
	// Reason is the autoscaler's reason when known (NoTraffic, Queued,
	// …) or the failure reason.
	Reason Reason
	// ColdStart is the time from the scale-from-zero decision to the
	// first ready instance (EventScaled from 0).
	ColdStart time.Duration
	// Idle is how long the revision had no request when it reached zero
	// (EventScaled to 0).
	Idle time.Duration
	// Message is extra detail: the traffic split, an error.
	Message string
}

// String renders e as a line such as "hello: 0 → 1 instances (cold
// start 180 ms)" or "hello: 1 → 0 instances (NoTraffic for 90 s)".
func (e Event) String() string {
	switch e.Kind {
	case EventScaled:
		s := fmt.Sprintf("%s: %d → %d instances", e.Service, e.From, e.To)
		switch {
		case e.From == 0 && e.ColdStart > 0:
			s += " (cold start " + humanDuration(e.ColdStart) + ")"
		case e.To == 0 && e.Reason != "":
			s += " (" + string(e.Reason)
			if e.Idle > 0 {
				s += " for " + humanDuration(e.Idle)
			}
			s += ")"
		}
		return s
	case EventTrafficChanged:
		return fmt.Sprintf("%s: traffic %s", e.Service, e.Message)
	case EventScaleCapped:
		return fmt.Sprintf("%s: revision %s wants %d instances; the backend runs at most %d", e.Service, e.Revision, e.From, e.To)
	}
	s := fmt.Sprintf("%s: revision %s %s", e.Service, e.Revision, e.Kind)
	if e.Reason != "" {
		s += " (" + string(e.Reason) + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// humanDuration renders d as "180 ms", "4.2 s" or "90 s".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Second:
		return fmt.Sprintf("%d ms", d.Milliseconds())
	case d < 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	default:
		return fmt.Sprintf("%d s", int(d.Round(time.Second).Seconds()))
	}
}
