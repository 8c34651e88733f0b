package control

import (
	"context"
	"fmt"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// target is what the scale loop asks of the engine: n standard
// instances (Backend.Scale) and, for a revision with idle-mode reserve,
// reserved ones (backend.Reserver.ScaleReserved; -1 for other
// revisions).
type target struct {
	n, reserved int
}

// reserve is the hook of a revision with zeroscale.dev/idle-mode
// reserve: it turns the autoscaler's decided scale into standard and
// reserved targets so that one reserved instance stands in for zero.
//
//   - Decided 0 (idle): one reserved instance. While it does not serve
//     yet, one standard instance stays (Scale 1, not 0), so there is
//     never a moment without a serving instance: no cold start.
//   - Decided n > 0 (traffic): n standard instances; a reserved instance
//     already there stays until n of them (at most the engine's cap)
//     serve, then it is scaled away (the engine drains it through the
//     activator first: no request is lost). None is started for it.
//
// A reserved instance that never serves (its cheaper profile is too
// small for the app) thus leaves one standard instance running.
type reserve struct {
	eng backend.Reserver
	// serving is the ID of the reserved instance that serves, "" when
	// none does; guarded by rev.mu.
	serving string
}

// ErrCannotReserve is returned by Add for a revision with
// zeroscale.dev/idle-mode: reserve on an engine that is not a
// backend.Reserver. It wraps backend.ErrInvalidArgument.
var ErrCannotReserve = fmt.Errorf("%w: %s: %q: the engine cannot run reserved instances (it does not implement backend.Reserver); use %q or %q",
	backend.ErrInvalidArgument, revision.IdleModeAnnotation, revision.IdleModeReserve, revision.IdleModeStop, revision.IdleModeFreeze)

// newReserve returns the hook of a revision whose idle mode is mode: nil
// unless it is reserve, ErrCannotReserve when the engine cannot run
// reserved instances.
func newReserve(be backend.Backend, mode revision.IdleMode) (*reserve, error) {
	if mode != revision.IdleModeReserve {
		return nil, nil
	}
	eng, ok := be.(backend.Reserver)
	if !ok {
		return nil, fmt.Errorf("%w (engine %T)", ErrCannotReserve, be)
	}
	return &reserve{eng: eng}, nil
}

// target is the engine's target for the decided scale d given the
// latest snapshot; limit is the engine's cap of standard instances (0
// none).
func (h *reserve) target(d, limit int, snap []backend.Instance) target {
	var standard, standardServing int
	reserved, reservedServing := false, false
	for _, in := range snap {
		switch {
		case in.Draining:
		case in.Reserved:
			reserved, reservedServing = true, reservedServing || in.Serving()
		default:
			standard++
			if in.Serving() {
				standardServing++
			}
		}
	}
	switch {
	case d > 0:
		need := d
		if limit > 0 {
			need = min(d, limit)
		}
		if reserved && standardServing < need {
			return target{n: d, reserved: 1}
		}
		return target{n: d, reserved: 0}
	case reservedServing || standard == 0:
		return target{n: 0, reserved: 1}
	default:
		return target{n: 1, reserved: 1} // the reserved one is not ready yet
	}
}

// scale asks the engine for n reserved instances.
func (h *reserve) scale(ctx context.Context, rev string, n int) error {
	return h.eng.ScaleReserved(ctx, rev, n)
}

// observe records which reserved instance serves in snap and returns
// the events of a change: the one that served retired (draining, gone
// or crashed), another one started serving.
func (h *reserve) observe(rev string, snap []backend.Instance) []Event {
	now := ""
	for _, in := range snap {
		if in.Reserved && in.Serving() {
			now = in.ID
			break
		}
	}
	prev := h.serving
	if now == prev {
		return nil
	}
	h.serving = now
	var evs []Event
	if prev != "" {
		evs = append(evs, Event{Kind: EventReservedRetired, Revision: rev, Message: "reserved instance " + prev})
	}
	if now != "" {
		evs = append(evs, Event{Kind: EventReservedStarted, Revision: rev, Message: "reserved instance " + now})
	}
	return evs
}
