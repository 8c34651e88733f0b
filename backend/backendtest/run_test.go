package backendtest_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// brokenEnv selects the broken engine TestBrokenEngine runs the suite
// against; TestSuiteCatchesBrokenEngines sets it in a child process.
const brokenEnv = "BACKENDTEST_BROKEN"

// broken wraps the fake engine and breaks one rule of the contract.
type broken struct {
	*fake.Backend
	variant string
	slots   *slots // restart-reuses-id
}

// slots renames instances as an engine that restarts an app in place
// would: a replacement of an instance that died (left without Draining)
// takes the dead one's ID and Started, as backend/process once did.
type slots struct {
	mu      sync.Mutex
	alias   map[string]backend.Instance // real ID → the ID and Started shown
	last    map[string]backend.Instance // real ID → as last shown
	free    []backend.Instance          // IDs of dead instances, to reuse
	realIDs map[string]string           // shown ID → real ID
}

func (sl *slots) rename(snap []backend.Instance) {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.alias == nil {
		sl.alias, sl.last, sl.realIDs = map[string]backend.Instance{}, map[string]backend.Instance{}, map[string]string{}
	}
	now := make(map[string]bool, len(snap))
	for _, in := range snap {
		now[in.ID] = true
	}
	for id, in := range sl.last {
		if !now[id] {
			if !in.Draining {
				sl.free = append(sl.free, sl.alias[id])
			}
			delete(sl.last, id)
		}
	}
	for i, in := range snap {
		a, ok := sl.alias[in.ID]
		if !ok {
			a = in
			if n := len(sl.free); n > 0 {
				a, sl.free = sl.free[n-1], sl.free[:n-1]
			}
			sl.alias[in.ID] = a
			sl.realIDs[a.ID] = in.ID
		}
		sl.last[in.ID] = in
		snap[i].ID, snap[i].Started = a.ID, a.Started
	}
}

func (sl *slots) real(id string) string {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if r, ok := sl.realIDs[id]; ok {
		return r
	}
	return id
}

func (b broken) Deploy(ctx context.Context, rev revision.Revision) error {
	err := b.Backend.Deploy(ctx, rev)
	if b.variant == "conflict-accepted" && errors.Is(err, backend.ErrInvalidArgument) {
		return nil
	}
	return err
}

func (b broken) Scale(ctx context.Context, rev string, n int) error {
	switch b.variant {
	case "negative-accepted":
		n = max(n, 0)
	case "unknown-accepted":
		if err := b.Backend.Scale(ctx, rev, n); !errors.Is(err, backend.ErrNotDeployed) {
			return err
		}
		return nil
	case "churn":
		if cur, err := b.Desired(rev); err == nil && cur == n {
			if err := b.Backend.Scale(ctx, rev, 0); err != nil {
				return err
			}
		}
	}
	return b.Backend.Scale(ctx, rev, n)
}

func (b broken) Watch(ctx context.Context, rev string) (<-chan []backend.Instance, error) {
	if b.variant == "cancel-ignored" {
		ctx = context.WithoutCancel(ctx)
	}
	ch, err := b.Backend.Watch(ctx, rev)
	if err != nil || (b.variant != "draining-hidden" && b.variant != "restart-reuses-id") {
		return ch, err
	}
	out := make(chan []backend.Instance)
	go func() {
		defer close(out)
		for snap := range ch {
			if b.variant == "restart-reuses-id" {
				b.slots.rename(snap)
			}
			for i := range snap {
				if b.variant == "draining-hidden" {
					// Never show Draining: as if the engine called the
					// DrainFunc before publishing it.
					snap[i].Draining = false
				}
			}
			select {
			case out <- snap:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func harness(variant string) func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
	return func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		clk := clocktesting.NewFakeClock(time.Unix(0, 0))
		drain := cfg.Drain
		switch variant {
		case "no-drain":
			drain = nil
		case "drain-not-awaited":
			drain = func(ctx context.Context, inst backend.Instance) error {
				go func() { _ = cfg.Drain(context.WithoutCancel(ctx), inst) }()
				return nil
			}
		}
		b, err := fake.New(fake.Options{
			Clock:        clk,
			Handler:      func(revision.Revision) http.Handler { return backendtest.App() },
			StartDelay:   time.Second,
			Drain:        drain,
			DrainTimeout: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		timeout := 10 * time.Second
		if variant != "" {
			timeout = time.Second // failures are expected: fail fast
		}
		sl := &slots{}
		return backendtest.Harness{
			Backend: broken{Backend: b, variant: variant, slots: sl},
			Crash: func(_ context.Context, inst backend.Instance) error {
				return b.Kill(sl.real(inst.ID))
			},
			Spec:    revision.Spec{Command: []string{"app"}},
			Timeout: timeout,
			Advance: func() {
				if clk.HasWaiters() {
					clk.Step(500 * time.Millisecond)
				}
			},
		}
	}
}

// TestBrokenEngine runs the suite against the engine broken as brokenEnv
// says; without it, against the intact wrapper, which must pass.
func TestBrokenEngine(t *testing.T) {
	backendtest.Run(t, harness(os.Getenv(brokenEnv)))
}

// TestSuiteCatchesBrokenEngines checks the suite fails each engine that
// breaks one rule, in the subtest that owns the rule, with the right
// message.
func TestSuiteCatchesBrokenEngines(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("in a child process")
	}
	for _, tc := range []struct{ variant, subtest, want string }{
		{"conflict-accepted", "DeployIdempotent", "want ErrInvalidArgument"},
		{"negative-accepted", "BadInput", "want ErrInvalidArgument"},
		{"unknown-accepted", "BadInput", "want ErrNotDeployed"},
		{"churn", "ScaleIdempotent", "was replaced by repeated Scale"},
		{"cancel-ignored", "WatchClosedOnCancel", "waiting for the watch to close"},
		{"no-drain", "ScaleUpAndDown", "left without the DrainFunc being called"},
		{"no-drain", "DrainBeforeStop", "waiting for the DrainFunc call"},
		{"no-drain", "RemoveWhileScaled", "without the DrainFunc being called"},
		{"draining-hidden", "ScaleUpAndDown", "before the engine published the instance Draining"},
		{"drain-not-awaited", "DrainBeforeStop", "connection refused"},
		{"restart-reuses-id", "RestartIsNewInstance", "the restart reused its ID"},
	} {
		t.Run(tc.variant+"/"+tc.subtest, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0],
				"-test.run=^TestBrokenEngine$/^"+tc.subtest+"$", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+tc.variant)
			out, err := cmd.CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) {
				t.Fatalf("suite passed (or did not run: %v) against the %s engine:\n%s", err, tc.variant, out)
			}
			if !strings.Contains(string(out), "--- FAIL: TestBrokenEngine/"+tc.subtest) || !strings.Contains(string(out), tc.want) {
				t.Errorf("suite against the %s engine: want subtest %s to fail with %q; output:\n%s", tc.variant, tc.subtest, tc.want, out)
			}
		})
	}
}
