package control

import (
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
)

// Status is the Controller's view of one revision.
type Status struct {
	Revision string
	// Ready: the revision has had a serving instance, or starts at zero.
	Ready bool
	// Removing: Remove began.
	Removing bool
	// Decision is the autoscaler's last decision (Revision "" before
	// the first); its Scale is what the revision should run.
	Decision autoscaler.Decision
	// Applied is the scale the engine last accepted (-1 before any):
	// Decision.Scale, or Cap when that is lower.
	Applied int
	// Cap is the engine's cap of instances per revision
	// (backend.InstanceLimiter) when the last decision was above it; 0
	// otherwise.
	Cap int
	// Instances is the engine's latest snapshot, both kinds
	// (Instance.Kind); Serving counts those that take requests
	// (Instance.Serving), reserved ones included.
	Instances []backend.Instance
	Serving   int
	// ScaleErr is the engine's last refusal of a scale (nil once a
	// Scale succeeds): permanent, or transient and being retried.
	ScaleErr error
	// Frozen: the instances are frozen (zeroscale.dev/idle-mode: freeze)
	// instead of stopped, or being drained to be, until a request thaws
	// them or the standby retention stops them.
	Frozen bool
}

// ReasonInitialScaleZero is the Reason of the EventReady of a revision
// that starts at zero (Knative's allow-zero-initial-scale): Ready
// without an instance, so a route can reach and wake it. Add emits it
// before it returns.
const ReasonInitialScaleZero = "InitialScaleZero"

// Reasons of other Events.
const (
	// ReasonRemoved: EventScaled to 0 because Remove stopped the
	// revision.
	ReasonRemoved = "Removed"
	// ReasonWatchFailed: EventFailed because the engine's watch of the
	// revision could not be opened again.
	ReasonWatchFailed = "WatchFailed"
	// ReasonIdleCheckFailed: EventIdleCheckFailed, the idle check erred
	// (counted as idle).
	ReasonIdleCheckFailed = "IdleCheckFailed"
	// ReasonBusy: EventIdleBusy, the idle check said the app is busy.
	ReasonBusy = "Busy"
	// ReasonFreezeFailed: EventScaleFailed because the engine could not
	// freeze the revision; it is scaled to zero instead.
	ReasonFreezeFailed = "FreezeFailed"
	// ReasonThawFailed: EventScaleFailed because the engine could not
	// thaw the revision; the scale then starts new instances.
	ReasonThawFailed = "ThawFailed"
)

// EventKind says what an Event reports.
type EventKind int

// Kinds of Event.
const (
	// EventScaled: the number of serving instances changed (From → To);
	// ColdStart is set for a start from zero.
	EventScaled EventKind = iota
	// EventReady: the revision became Ready (its first serving
	// instance, or Reason "InitialScaleZero").
	EventReady
	// EventScaleFailed: the engine refused a scale to To permanently
	// (Message says why); the revision stays at its last applied scale
	// until a newer decision.
	EventScaleFailed
	// EventScaleCapped: a decision (From instances) is above the
	// engine's cap (To); the revision runs To.
	EventScaleCapped
	// EventTimedOut: the autoscaler gave up: no instance became ready
	// within its progress deadline; the revision is scaled to zero.
	EventTimedOut
	// EventFailed: the engine lost the revision (Message says why).
	EventFailed
	// EventIdleBusy: the idle check before scale to zero said busy; the
	// revision keeps its instance for one more grace period.
	EventIdleBusy
	// EventIdleCheckFailed: the idle check failed (Message says why)
	// and counted as idle: the revision goes to zero.
	EventIdleCheckFailed
	// EventReservedStarted: a reserved instance (idle-mode reserve)
	// serves; Message names it.
	EventReservedStarted
	// EventReservedRetired: the reserved instance that served no longer
	// does (drained away once standard instances serve, or crashed);
	// Message names it.
	EventReservedRetired
	// EventFrozen: the revision's instances (From) were frozen instead
	// of stopped (zeroscale.dev/idle-mode: freeze).
	EventFrozen
	// EventThawed: a request thawed the frozen instances (Message says
	// how long the engine took).
	EventThawed
	// EventStandbyExpired: the revision stayed frozen for its standby
	// retention without a request; its instances are stopped.
	EventStandbyExpired
)

var kindNames = [...]string{"Scaled", "Ready", "ScaleFailed", "ScaleCapped", "TimedOut", "Failed", "IdleBusy", "IdleCheckFailed",
	"ReservedStarted", "ReservedRetired", "Frozen", "Thawed", "StandbyExpired"}

// String returns the kind's name, e.g. "Scaled".
func (k EventKind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", int(k))
}

// Event is something that happened to a revision.
type Event struct {
	Kind     EventKind
	Revision string
	Time     time.Time
	// From and To: serving instances before and after (EventScaled);
	// the decision and the cap (EventScaleCapped); To is the refused
	// scale (EventScaleFailed).
	From, To int
	// ColdStart is the time from the scale-from-zero decision to the
	// first serving instance (EventScaled from 0).
	ColdStart time.Duration
	// Reason: the autoscaler's reason (NoTraffic, TimedOut, …) or why.
	Reason string
	// Message is extra detail, an error.
	Message string
}

// String renders e as one line.
func (e Event) String() string {
	s := fmt.Sprintf("%s %s", e.Revision, e.Kind)
	switch e.Kind {
	case EventScaled, EventScaleCapped:
		s += fmt.Sprintf(" %d → %d", e.From, e.To)
	}
	if e.ColdStart > 0 {
		s += fmt.Sprintf(" (cold start %v)", e.ColdStart)
	}
	if e.Reason != "" {
		s += " (" + e.Reason + ")"
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}
