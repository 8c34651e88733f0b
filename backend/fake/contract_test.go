package fake_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

func TestContract(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
		b, err := fake.New(fake.Options{
			Clock:        clk,
			Handler:      func(revision.Revision) http.Handler { return backendtest.App() },
			StartDelay:   500 * time.Millisecond,
			StartJitter:  time.Second,
			Seed:         1,
			Drain:        cfg.Drain,
			DrainTimeout: time.Hour, // far beyond what Advance reaches in Timeout
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return backendtest.Harness{
			Backend: b,
			Spec:    revision.Spec{Image: "backendtest-app"},
			Crash: func(_ context.Context, inst backend.Instance) error {
				return b.Kill(inst.ID)
			},
			Advance: func() {
				if clk.HasWaiters() {
					clk.Step(250 * time.Millisecond)
				}
			},
		}
	})
}
