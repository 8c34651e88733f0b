package backendtest

import (
	"errors"
	"fmt"

	"github.com/zeroscale/zeroscale/backend"
)

// testReserved checks backend.Reserver's rules on engines that
// implement it.
func testReserved(e *env) {
	rs, ok := e.h.Backend.(backend.Reserver)
	if !ok {
		e.t.Skip("the engine is not a backend.Reserver")
	}
	ctx := e.t.Context()
	if err := rs.ScaleReserved(ctx, missing, 1); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("ScaleReserved of unknown revision: %v, want ErrNotDeployed", err)
	}
	rev := e.deploy("bt-reserved")
	for _, n := range []int{-1, 2} {
		if err := rs.ScaleReserved(ctx, rev, n); !errors.Is(err, backend.ErrInvalidArgument) {
			e.t.Errorf("ScaleReserved(%s, %d): %v, want ErrInvalidArgument", rev, n, err)
		}
	}
	scaleReserved := func(n int) {
		e.t.Helper()
		if err := rs.ScaleReserved(ctx, rev, n); err != nil {
			e.t.Fatalf("ScaleReserved(%s, %d): %v", rev, n, err)
		}
	}
	tr := e.watch(rev)
	tr.first()
	scaleReserved(1)
	snap := tr.until("one serving reserved instance", func(s []backend.Instance) bool {
		return len(s) == 1 && s[0].Serving() && s[0].Reserved
	})
	res := snap[0]
	e.mustOK(res)

	e.scale(rev, 2)
	tr.until("2 serving standard instances beside the reserved one "+res.ID, func(s []backend.Instance) bool {
		return countKind(s, false) == 2 && countKind(s, true) == 1 && contains(serving(s), res.ID)
	})
	scaleReserved(1)
	e.scale(rev, 0)
	tr.until("only the reserved instance "+res.ID+" left after Scale 0", func(s []backend.Instance) bool {
		return len(s) == 1 && s[0].ID == res.ID && s[0].Serving()
	})
	e.mustOK(res)

	e.crash(res)
	snap = tr.until(fmt.Sprintf("reserved instance %s to leave after its app crashed, and a new reserved one to serve", res.ID),
		func(s []backend.Instance) bool {
			l := tr.lives[res.ID]
			return l != nil && l.gone && len(s) == 1 && s[0].Reserved && s[0].Serving()
		})
	again := snap[0]
	if again.ID == res.ID {
		e.t.Fatalf("the restarted reserved instance has the crashed one's ID %s", res.ID)
	}
	e.mustOK(again)
	scaleReserved(0)
	tr.empty()
	e.checkDrained(again.ID, "reserved instance "+again.ID+" stopped by ScaleReserved 0")
	e.waitDead(again)
}

// countKind counts the not-draining instances of s of one kind.
func countKind(s []backend.Instance, reserved bool) int {
	n := 0
	for _, in := range s {
		if in.Reserved == reserved && in.Serving() {
			n++
		}
	}
	return n
}
