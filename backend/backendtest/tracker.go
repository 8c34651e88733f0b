package backendtest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/backend"
)

// tracker follows one watch channel and checks, on every snapshot, the
// ordering rules of the contract that survive coalescing (a slow reader
// may miss intermediate snapshots, never the latest).
type tracker struct {
	e      *env
	rev    string
	ch     <-chan []backend.Instance
	cur    []backend.Instance
	have   bool // cur holds a snapshot
	closed bool
	lives  map[string]*life
}

// life is what the tracker saw of one instance.
type life struct {
	first      backend.Instance
	ready      bool // seen Ready
	unready    bool // seen not Ready after Ready
	readyAgain bool // seen Ready after unready
	draining   bool // seen Draining
	gone       bool // seen leaving
}

// watch opens a watch on rev for the rest of the subtest.
func (e *env) watch(rev string) *tracker {
	e.t.Helper()
	return e.watchCtx(e.t.Context(), rev)
}

func (e *env) watchCtx(ctx context.Context, rev string) *tracker {
	e.t.Helper()
	ch, err := e.h.Backend.Watch(ctx, rev)
	if err != nil {
		e.t.Fatalf("Watch(%s): %v", rev, err)
	}
	if ch == nil {
		e.t.Fatalf("Watch(%s) returned a nil channel and no error", rev)
	}
	return &tracker{e: e, rev: rev, ch: ch, lives: make(map[string]*life)}
}

// first waits for the first snapshot, which the contract says is sent at
// once.
func (tr *tracker) first() []backend.Instance {
	tr.e.t.Helper()
	return tr.until("the first snapshot", func([]backend.Instance) bool { return true })
}

// until waits for a snapshot satisfying cond and returns it. The current
// snapshot counts. It fails the test after Timeout or if the channel
// closes.
func (tr *tracker) until(desc string, cond func([]backend.Instance) bool) []backend.Instance {
	tr.e.t.Helper()
	if tr.have && cond(tr.cur) {
		return tr.cur
	}
	tr.wait(desc, func(closed bool) bool {
		if closed {
			tr.e.t.Fatalf("watch of %s closed while waiting for %s; last snapshot %s", tr.rev, desc, format(tr.cur))
		}
		return cond(tr.cur)
	})
	return tr.cur
}

// untilClosed reads snapshots until the channel closes.
func (tr *tracker) untilClosed(desc string) {
	tr.e.t.Helper()
	if !tr.closed {
		tr.wait("the watch to close ("+desc+")", func(closed bool) bool { return closed })
	}
}

// wait observes snapshots until done (called after each one, or with
// true once the channel closed) returns true, calling Advance every
// PollInterval meanwhile; it fails the test after Timeout.
func (tr *tracker) wait(desc string, done func(closed bool) bool) {
	tr.e.t.Helper()
	deadline := time.NewTimer(tr.e.h.Timeout)
	defer deadline.Stop()
	tick := time.NewTicker(PollInterval)
	defer tick.Stop()
	for {
		select {
		case snap, ok := <-tr.ch:
			if !ok {
				tr.closed = true
			} else {
				tr.observe(snap)
			}
			if done(!ok) {
				return
			}
		case <-tick.C:
			if tr.e.h.Advance != nil {
				tr.e.h.Advance()
			}
		case <-deadline.C:
			tr.e.t.Fatalf("timed out after %v waiting for %s on %s; last snapshot %s", tr.e.h.Timeout, desc, tr.rev, format(tr.cur))
		}
	}
}

// ready waits until exactly n instances are not draining, all of them
// ready, and returns those.
func (tr *tracker) ready(n int) []backend.Instance {
	tr.e.t.Helper()
	snap := tr.until(fmt.Sprintf("%d ready instances", n), func(s []backend.Instance) bool {
		live := active(s)
		if len(live) != n {
			return false
		}
		for _, in := range live {
			if !in.Ready {
				return false
			}
		}
		return true
	})
	return active(snap)
}

// empty waits until no instance is left.
func (tr *tracker) empty() {
	tr.e.t.Helper()
	tr.until("no instances", func(s []backend.Instance) bool { return len(s) == 0 })
}

// gone returns the instances seen leaving, in no particular order.
func (tr *tracker) gone() []backend.Instance {
	var out []backend.Instance
	for _, l := range tr.lives {
		if l.gone {
			out = append(out, l.first)
		}
	}
	return out
}

// observe checks snap against what was seen before and records it.
func (tr *tracker) observe(snap []backend.Instance) {
	t := tr.e.t
	t.Helper()
	inSnap := make(map[string]bool, len(snap))
	for _, in := range snap {
		switch {
		case in.ID == "":
			t.Errorf("watch of %s: instance with an empty ID: %+v", tr.rev, in)
			continue
		case inSnap[in.ID]:
			t.Errorf("watch of %s: instance %s listed twice in one snapshot %s", tr.rev, in.ID, format(snap))
		case in.Revision != tr.rev:
			t.Errorf("watch of %s: instance %s has Revision %q", tr.rev, in.ID, in.Revision)
		case in.Ready && in.Address == "":
			t.Errorf("watch of %s: instance %s is Ready without an Address", tr.rev, in.ID)
		case in.Started.IsZero():
			t.Errorf("watch of %s: instance %s has a zero Started time", tr.rev, in.ID)
		}
		inSnap[in.ID] = true
		l, ok := tr.lives[in.ID]
		if !ok {
			l = &life{first: in}
			tr.lives[in.ID] = l
		}
		switch {
		case l.gone:
			t.Errorf("watch of %s: instance %s reappeared after it left", tr.rev, in.ID)
		case !in.Started.Equal(l.first.Started):
			t.Errorf("watch of %s: instance %s changed Started from %v to %v", tr.rev, in.ID, l.first.Started, in.Started)
		case l.draining && !in.Draining:
			t.Errorf("watch of %s: instance %s stopped Draining", tr.rev, in.ID)
		case in.Address != "" && l.first.Address != "" && in.Address != l.first.Address:
			t.Errorf("watch of %s: instance %s moved from %s to %s", tr.rev, in.ID, l.first.Address, in.Address)
		}
		if l.first.Address == "" {
			l.first.Address = in.Address
		}
		if l.unready && in.Ready {
			l.readyAgain = true
		}
		if l.ready && !in.Ready {
			l.unready = true
		}
		l.ready = l.ready || in.Ready
		l.draining = l.draining || in.Draining
	}
	for id, l := range tr.lives {
		if l.gone || inSnap[id] {
			continue
		}
		l.gone = true
		// Ready means it may have had traffic: it must have been
		// drained. The DrainFunc returns before the engine stops the
		// instance, and the instance leaves only after it stopped.
		if l.ready && !tr.e.crashed[id] {
			tr.e.checkDrained(id, "watch of "+tr.rev+": instance "+id+" was Ready and left")
		}
	}
	tr.cur, tr.have = snap, true
}

// active returns the instances of s that are not draining.
func active(s []backend.Instance) []backend.Instance {
	var out []backend.Instance
	for _, in := range s {
		if !in.Draining {
			out = append(out, in)
		}
	}
	return out
}

func format(s []backend.Instance) string {
	if s == nil {
		return "(none yet)"
	}
	parts := make([]string, len(s))
	for i, in := range s {
		state := "starting"
		if in.Ready {
			state = "ready"
		}
		if in.Draining {
			state += ",draining"
		}
		if in.Frozen {
			state += ",frozen"
		}
		parts[i] = fmt.Sprintf("%s@%s(%s)", in.ID, in.Address, state)
	}
	return "[" + strings.Join(parts, " ") + "]"
}
