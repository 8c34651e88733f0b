package backendtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

const missing = "bt-missing-00001"

func testDeployIdempotent(e *env) {
	ctx := e.t.Context()
	rev := e.revision("bt-a", 0)
	for i := range 3 {
		if err := e.h.Backend.Deploy(ctx, rev); err != nil {
			e.t.Fatalf("Deploy #%d of the same revision %s: %v, want nil", i+1, rev.Name(), err)
		}
	}
	if snap := e.watch(rev.Name()).first(); len(snap) != 0 {
		e.t.Errorf("Deploy started instances: first snapshot %s, want none", format(snap))
	}
	other := e.revision("bt-a", 1)
	if err := e.h.Backend.Deploy(ctx, other); !errors.Is(err, backend.ErrInvalidArgument) {
		e.t.Errorf("Deploy of %s with a different spec: %v, want ErrInvalidArgument", other.Name(), err)
	}
	// The conflicting call changed nothing: the original still scales.
	tr := e.watch(rev.Name())
	e.scale(rev.Name(), 1)
	e.mustOK(tr.ready(1)[0])
	e.scale(rev.Name(), 0)
	tr.empty()
}

func testBadInput(e *env) {
	ctx := e.t.Context()
	b := e.h.Backend
	if err := b.Scale(ctx, missing, 1); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("Scale of unknown revision: %v, want ErrNotDeployed", err)
	}
	if err := b.Remove(ctx, missing); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("Remove of unknown revision: %v, want ErrNotDeployed", err)
	}
	if ch, err := b.Watch(ctx, missing); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("Watch of unknown revision: channel %v, error %v; want ErrNotDeployed", ch, err)
	}
	rev := e.deploy("bt-bad")
	for _, n := range []int{-1, -1000} {
		if err := b.Scale(ctx, rev, n); !errors.Is(err, backend.ErrInvalidArgument) {
			e.t.Errorf("Scale(%s, %d): %v, want ErrInvalidArgument", rev, n, err)
		}
	}
	if snap := e.watch(rev).first(); len(snap) != 0 {
		e.t.Errorf("rejected Scale calls started instances: %s", format(snap))
	}
}

func testScaleUpAndDown(e *env) {
	rev := e.deploy("bt-up")
	tr := e.watch(rev)
	if snap := tr.first(); len(snap) != 0 {
		e.t.Fatalf("fresh revision has instances: %s", format(snap))
	}
	e.scale(rev, 3)
	up := tr.ready(3)
	for _, in := range up {
		e.mustOK(in)
	}
	e.scale(rev, 1)
	kept := tr.until("1 instance left", func(s []backend.Instance) bool { return len(s) == 1 && s[0].Serving() })
	e.mustOK(kept[0])
	e.scale(rev, 0)
	tr.empty()
	for _, in := range tr.gone() {
		e.waitDead(in)
	}
	// Up again: new instances, never reused IDs (the tracker fails on a
	// reappearing ID).
	e.scale(rev, 2)
	for _, in := range tr.ready(2) {
		e.mustOK(in)
	}
	e.scale(rev, 0)
	tr.empty()
}

func testScaleIdempotent(e *env) {
	rev, tr, first := e.up("bt-idem", 2)
	for range 5 {
		e.scale(rev, 2)
	}
	// Any churn caused by the repeated calls would show in the watch
	// before the next change converges.
	e.scale(rev, 3)
	third := tr.ready(3)
	for _, in := range first {
		if !contains(third, in.ID) {
			e.t.Errorf("instance %s was replaced by repeated Scale(%s, 2); now %s", in.ID, rev, format(third))
		}
	}
	if g := tr.gone(); len(g) != 0 {
		e.t.Errorf("repeated Scale(%s, 2) stopped instances %s", rev, format(g))
	}
	e.scale(rev, 0)
	tr.empty()
}

func testRemoveWhileScaled(e *env) {
	ctx := e.t.Context()
	rev, tr, up := e.up("bt-rm", 2)
	if err := e.h.Backend.Remove(ctx, rev); err != nil {
		e.t.Fatalf("Remove(%s): %v", rev, err)
	}
	// A second Remove hits a revision being removed (nil) or already
	// forgotten (ErrNotDeployed).
	if err := e.h.Backend.Remove(ctx, rev); err != nil && !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("second Remove(%s): %v, want nil or ErrNotDeployed", rev, err)
	}
	tr.untilClosed("revision removed")
	if len(tr.cur) != 0 {
		// The tracker saw the instances leave only if the engine
		// published that before closing; either way they must be dead.
		e.t.Logf("watch closed with instances still listed: %s", format(tr.cur))
	}
	for _, in := range up {
		e.checkDrained(in.ID, fmt.Sprintf("Remove(%s) stopped ready instance %s", rev, in.ID))
		e.waitDead(in)
	}
	e.eventually(fmt.Sprintf("Scale(%s) to fail with ErrNotDeployed after Remove", rev), func() bool {
		return errors.Is(e.h.Backend.Scale(ctx, rev, 1), backend.ErrNotDeployed)
	})
	if ch, err := e.h.Backend.Watch(ctx, rev); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("Watch(%s) after Remove: channel %v, error %v; want ErrNotDeployed", rev, ch, err)
	}
}

func testWatchClosedOnCancel(e *env) {
	rev := e.deploy("bt-cancel")
	ctx, cancel := context.WithCancel(e.t.Context())
	tr := e.watchCtx(ctx, rev)
	other := e.watch(rev)
	e.scale(rev, 1)
	tr.ready(1)
	cancel()
	tr.untilClosed("its ctx was cancelled")
	// Other watches of the same revision are unaffected.
	other.ready(1)
	e.scale(rev, 0)
	other.empty()
}

func testConcurrent(e *env) {
	const (
		revisions  = 3
		goroutines = 8
		rounds     = 20
		maxScale   = 3
	)
	ctx := e.t.Context()
	b := e.h.Backend
	revs := make([]string, revisions)
	specs := make([]revision.Revision, revisions)
	for i := range revs {
		revs[i] = e.deploy(fmt.Sprintf("bt-conc%d", i))
		specs[i] = e.revision(fmt.Sprintf("bt-conc%d", i), 0)
	}
	errs := make(chan error, goroutines*rounds)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(g), 1))
			for range rounds {
				i := rng.IntN(revisions)
				var err error
				switch rng.IntN(3) {
				case 0:
					err = b.Deploy(ctx, specs[i])
				case 1:
					err = b.Scale(ctx, revs[i], rng.IntN(maxScale+1))
				case 2:
					wctx, cancel := context.WithCancel(ctx)
					var ch <-chan []backend.Instance
					if ch, err = b.Watch(wctx, revs[i]); err == nil {
						err = drainWatch(ch, cancel, e.h.Timeout)
					}
					cancel()
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Errorf("concurrent call: %v", err)
	}
	trackers := make([]*tracker, revisions)
	ids := make(map[string]string) // instance ID → revision
	for i, rev := range revs {
		trackers[i] = e.watch(rev)
		e.scale(rev, 2)
	}
	for i, tr := range trackers {
		for _, in := range tr.ready(2) {
			if r, dup := ids[in.ID]; dup {
				e.t.Errorf("instance ID %s used by both %s and %s", in.ID, r, revs[i])
			}
			ids[in.ID] = revs[i]
			e.mustOK(in)
		}
	}
	for i, tr := range trackers {
		e.scale(revs[i], 0)
		tr.empty()
	}
}

func testDrainBeforeStop(e *env) {
	ctx := e.t.Context()
	rev, tr, up := e.up("bt-drain", 1)
	inst := up[0]
	release := e.drains.hold()
	defer release()

	// A request in flight on the instance when scale-down starts.
	held := make(chan error, 1)
	started := make(chan struct{})
	go func() { held <- e.holdRequest(ctx, inst.Address, "drain", started) }()
	select {
	case <-started:
	case err := <-held:
		e.t.Fatalf("hold request on %s: %v", inst.ID, err)
	}

	e.scale(rev, 0)
	e.eventually("the DrainFunc call for "+inst.ID, func() bool {
		_, ok := e.drains.called(inst.ID)
		return ok
	})
	tr.until(inst.ID+" published Draining", func(s []backend.Instance) bool {
		return len(s) == 1 && s[0].ID == inst.ID && s[0].Draining
	})
	// The DrainFunc has not returned: the instance must still serve, and
	// still be listed.
	e.mustOK(inst)
	if code, body, err := e.get(ctx, inst.Address, PathRelease+"?key=drain"); err != nil || code != http.StatusOK {
		e.t.Fatalf("release on %s: status %d, body %q, error %v", inst.ID, code, body, err)
	}
	select {
	case err := <-held:
		if err != nil {
			e.t.Fatalf("request in flight on %s during scale-down: %v", inst.ID, err)
		}
	case <-time.After(e.h.Timeout):
		e.t.Fatalf("request in flight on %s did not complete within %v of its release", inst.ID, e.h.Timeout)
	}
	if len(tr.cur) != 1 || tr.cur[0].ID != inst.ID {
		e.t.Fatalf("instance %s left before its DrainFunc returned: %s", inst.ID, format(tr.cur))
	}
	release()
	tr.empty()
	e.waitDead(inst)
}

// holdRequest does GET /hold?key=key on addr, closes started once the
// response has begun, and checks the whole response arrives intact.
func (e *env) holdRequest(ctx context.Context, addr, key string, started chan<- struct{}) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+PathHold+"?key="+key, nil)
	if err != nil {
		return err
	}
	resp, err := e.h.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d, want 200", resp.StatusCode)
	}
	r := bufio.NewReader(io.LimitReader(resp.Body, maxBody))
	line, err := r.ReadString('\n')
	if err != nil || line != "held\n" {
		return fmt.Errorf("first line %q (error %v), want \"held\\n\"", line, err)
	}
	close(started)
	rest, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("body cut after %q: %w", line+string(rest), err)
	}
	if string(rest) != "released\n" {
		return fmt.Errorf("body %q, want \"held\\nreleased\\n\"", line+string(rest))
	}
	return nil
}

// drainWatch reads the first snapshot of ch (sent at once), cancels the
// watch and waits for ch to close, each within timeout.
func drainWatch(ch <-chan []backend.Instance, cancel func(), timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	select {
	case <-ch:
	case <-deadline.C:
		return fmt.Errorf("no first snapshot within %v of Watch", timeout)
	}
	cancel()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return nil
			}
		case <-deadline.C:
			return fmt.Errorf("watch not closed within %v of its ctx being cancelled", timeout)
		}
	}
}

// up deploys a revision of config, watches it, scales it to n and
// returns it once n instances are ready.
func (e *env) up(config string, n int) (string, *tracker, []backend.Instance) {
	e.t.Helper()
	rev := e.deploy(config)
	tr := e.watch(rev)
	e.scale(rev, n)
	return rev, tr, tr.ready(n)
}

// checkDrained reports an error unless the DrainFunc was called for id
// with the instance marked Draining, after the engine published it so.
func (e *env) checkDrained(id, what string) {
	e.t.Helper()
	c, ok := e.drains.called(id)
	switch {
	case !ok:
		e.t.Errorf("%s without the DrainFunc being called", what)
	case c.arg.ID != id || !c.arg.Draining:
		e.t.Errorf("%s: the DrainFunc got %+v, want the instance with Draining set", what, c.arg)
	case c.problem != "":
		e.t.Errorf("%s: %s", what, c.problem)
	}
}

func contains(s []backend.Instance, id string) bool {
	for _, in := range s {
		if in.ID == id {
			return true
		}
	}
	return false
}

// testRestartIsNewInstance checks the restart rule: an app that exits is
// restarted as a new instance with a new ID and a Started of its own,
// and the crashed instance leaves the snapshot (without a drain: its app
// is gone). Layers above infer start-up times from the first Ready of
// an ID, so an engine that brings the same ID back would make a 200 ms
// restart of a 2-hour-old instance look like a 2-hour start.
func testRestartIsNewInstance(e *env) {
	rev := e.deploy("bt-restart")
	tr := e.watch(rev)
	tr.first()
	e.scale(rev, 1)
	old := tr.ready(1)[0]
	e.mustOK(old)
	e.crash(old)
	snap := tr.until(fmt.Sprintf("instance %s to leave after its app crashed, and a restarted instance to be ready "+
		"(a restart must be a new instance with a new ID)", old.ID), func(s []backend.Instance) bool {
		if l := tr.lives[old.ID]; l != nil && l.readyAgain {
			e.t.Fatalf("instance %s became Ready again after its app crashed: the restart reused its ID "+
				"(a restart must be a new instance with a new ID); snapshot %s", old.ID, format(s))
		}
		l := tr.lives[old.ID]
		return l != nil && l.gone && len(serving(s)) == 1
	})
	now := serving(snap)[0]
	if now.ID == old.ID {
		e.t.Fatalf("the restarted instance has the crashed one's ID %s", old.ID)
	}
	if now.Started.Before(old.Started) {
		e.t.Errorf("restarted instance %s: Started %v is before the crashed one's %v: it must be the new incarnation's start",
			now.ID, now.Started, old.Started)
	}
	e.mustOK(now)
	e.scale(rev, 0)
	tr.empty()
}

// serving returns the instances of s that take requests.
func serving(s []backend.Instance) []backend.Instance {
	var out []backend.Instance
	for _, in := range s {
		if in.Serving() {
			out = append(out, in)
		}
	}
	return out
}
