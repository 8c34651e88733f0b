package backendtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/zeroscale/zeroscale/backend"
)

// freezer returns the engine's backend.Freezer, or skips the subtest.
func (e *env) freezer() backend.Freezer {
	e.t.Helper()
	f, ok := e.h.Backend.(backend.Freezer)
	if !ok {
		e.t.Skip("the engine does not implement backend.Freezer")
	}
	return f
}

// freeze calls Freeze and waits until every listed instance is Frozen.
func (e *env) freeze(f backend.Freezer, rev string, tr *tracker, want []backend.Instance) {
	e.t.Helper()
	if err := f.Freeze(e.t.Context(), rev); err != nil {
		e.t.Fatalf("Freeze(%s): %v", rev, err)
	}
	snap := tr.until(fmt.Sprintf("%d frozen instances", len(want)), func(s []backend.Instance) bool {
		for _, in := range s {
			if !in.Frozen {
				return false
			}
		}
		return len(s) == len(want)
	})
	for _, in := range snap {
		switch {
		case !contains(want, in.ID):
			e.t.Errorf("Freeze(%s) listed instance %s, want only %s", rev, in.ID, format(want))
		case !in.Ready || in.Serving():
			e.t.Errorf("frozen instance %s: Ready %v, Serving %v; want Ready and not Serving", in.ID, in.Ready, in.Serving())
		}
		if c, ok := e.drains.frozen(in.ID); !ok {
			e.t.Errorf("Freeze(%s) froze %s without calling the DrainFunc", rev, in.ID)
		} else if c.problem != "" {
			e.t.Errorf("Freeze(%s): %s", rev, c.problem)
		}
	}
}

// testFreezeThaw: Freeze drains and suspends the instance (a request
// sent to it is not answered), Thaw resumes the same instance (the
// request completes, nothing new starts), a second freeze and a Scale 0
// stop it.
func testFreezeThaw(e *env) {
	ctx := e.t.Context()
	f := e.freezer()
	if err := f.Freeze(ctx, missing); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("Freeze of an unknown revision: %v, want ErrNotDeployed", err)
	}
	if err := f.Thaw(ctx, missing); !errors.Is(err, backend.ErrNotDeployed) {
		e.t.Errorf("Thaw of an unknown revision: %v, want ErrNotDeployed", err)
	}
	rev, tr, up := e.up("bt-frz", 1)
	inst := up[0]
	e.freeze(f, rev, tr, up)
	if err := f.Freeze(ctx, rev); err != nil {
		e.t.Errorf("Freeze(%s) of a frozen revision: %v, want nil", rev, err)
	}

	// A frozen app answers nothing; the request waits for the thaw.
	answer := make(chan error, 1)
	go func() { answer <- e.expectOK(ctx, inst.Address) }()
	select {
	case err := <-answer:
		e.t.Fatalf("frozen instance %s answered a request (error %v)", inst.ID, err)
	case <-time.After(frozenQuiet):
	}

	if err := f.Thaw(ctx, rev); err != nil {
		e.t.Fatalf("Thaw(%s): %v", rev, err)
	}
	snap := tr.until("the instance thawed", func(s []backend.Instance) bool {
		return len(s) == 1 && s[0].Serving()
	})
	if snap[0].ID != inst.ID {
		e.t.Errorf("Thaw(%s) serves instance %s, want the frozen %s", rev, snap[0].ID, inst.ID)
	}
	select {
	case err := <-answer:
		if err != nil {
			e.t.Errorf("request held by frozen %s, after the thaw: %v", inst.ID, err)
		}
	case <-time.After(e.h.Timeout):
		e.t.Fatalf("request held by frozen %s not answered within %v of the thaw", inst.ID, e.h.Timeout)
	}
	e.mustOK(inst)
	if err := f.Thaw(ctx, rev); err != nil {
		e.t.Errorf("Thaw(%s) of a thawed revision: %v, want nil", rev, err)
	}

	e.freeze(f, rev, tr, up)
	e.scale(rev, 0)
	tr.empty()
	e.checkDrained(inst.ID, "Scale 0 of frozen "+inst.ID)
	e.waitDead(inst)
	if g := tr.gone(); len(g) != 1 {
		e.t.Errorf("instances started and stopped around the freeze: %s, want only %s", format(g), inst.ID)
	}
}

// testFreezeRemove: Remove of a frozen revision stops its instances and
// closes the watch.
func testFreezeRemove(e *env) {
	f := e.freezer()
	rev, tr, up := e.up("bt-frzrm", 2)
	e.freeze(f, rev, tr, up)
	if err := e.h.Backend.Remove(e.t.Context(), rev); err != nil {
		e.t.Fatalf("Remove(%s) while frozen: %v", rev, err)
	}
	tr.untilClosed("frozen revision removed")
	for _, in := range up {
		e.waitDead(in)
	}
}

// testFreezeClose: closing the engine with frozen instances stops them.
func testFreezeClose(e *env) {
	f := e.freezer()
	c, ok := e.h.Backend.(io.Closer)
	if !ok {
		e.t.Skip("the engine is not an io.Closer")
	}
	rev, tr, up := e.up("bt-frzcl", 2)
	e.freeze(f, rev, tr, up)
	done := make(chan error, 1)
	go func() { done <- c.Close() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("Close with frozen instances: %v", err)
		}
	case <-time.After(e.h.Timeout):
		e.t.Fatalf("Close with frozen instances did not return within %v", e.h.Timeout)
	}
	for _, in := range up {
		e.waitDead(in)
	}
}

// frozenQuiet is how long the suite waits for a frozen instance not to
// answer. An engine that does not suspend fails at once; one that does
// passes whatever the machine's load.
const frozenQuiet = 300 * time.Millisecond

// expectOK does GET PathOK on addr, without the suite's per-request
// timeout (a frozen instance holds it), and checks the answer.
func (e *env) expectOK(ctx context.Context, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+PathOK, nil)
	if err != nil {
		return err
	}
	resp, err := e.h.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err == nil && (resp.StatusCode != http.StatusOK || string(b) != "ok\n") {
		err = fmt.Errorf("status %d, body %q; want 200 \"ok\\n\"", resp.StatusCode, b)
	}
	return err
}
