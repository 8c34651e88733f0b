package e2e_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/revision"
)

// TestReservedInstance: on real processes, a revision with idle-mode
// reserve keeps a reserved instance instead of zero: it serves the first
// request after idle with no cold start, standard instances take over
// under load and the reserved one retires without a lost request, and
// once idle again a reserved instance comes back before the last
// standard one goes.
func TestReservedInstance(t *testing.T) {
	h := newHarness(t, zeroConfig(), 16)
	reservedScenario(t, h, "rsv", appSpec(t), "process")
}

// reservedScenario runs the reserved instance's life on h's engine and
// logs its numbers, labelled engine.
func reservedScenario(t *testing.T, h *harness, name string, spec revision.Spec, engine string) {
	t.Helper()
	rev := name + "-00001"
	spec.Scaling.IdleMode = revision.IdleModeReserve
	spec.Scaling.ReservedCPUMillis = new(int64(250))
	spec.Scaling.ReservedMemoryBytes = new(int64(128 << 20))
	h.apply(zeroscale.ServiceSpec{Name: name, Template: spec})
	isKind := func(kind zeroscale.EventKind, after time.Time) func(zeroscale.Event) bool {
		return func(e zeroscale.Event) bool { return e.Kind == kind && e.Revision == rev && !e.Time.Before(after) }
	}
	start := time.Now()
	first := h.waitEvent(2*time.Minute, "the first reserved instance", isKind(zeroscale.EventReservedStarted, start))
	h.waitRevision(time.Minute, name, "a serving reserved instance", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && r.Reserved == 1 && r.AppliedScale == 0
	})

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Load from the first request on: 8 clients of 100 ms requests until
	// the reserved instance retired and a while after. Every request
	// must succeed: none is lost in the swap.
	swapped := time.Now()
	var wg sync.WaitGroup
	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var firstTTFB time.Duration
	if r := h.get(ctx, name, "/rev"); !r.ok() || r.body != rev+"\n" {
		t.Fatalf("first request, served by the reserved instance: %v", r)
	} else {
		firstTTFB = r.ttfb
	}
	for range 8 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sent.Add(1)
				if r := h.get(ctx, name, "/sleep?d=100ms"); !r.ok() || !strings.HasPrefix(r.body, rev+" slept") {
					failed.Add(1)
					t.Errorf("request during the swap: %v", r)
				}
			}
		})
	}
	retired := h.waitEvent(2*time.Minute, "the reserved instance retired", isKind(zeroscale.EventReservedRetired, swapped))
	if retired.Message != first.Message {
		t.Errorf("retired %q, want the first reserved instance %q", retired.Message, first.Message)
	}
	h.waitRevision(time.Minute, name, "standard instances only", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && r.Reserved == 0 && r.ActualScale >= 1
	})
	time.Sleep(time.Second) // load on the standard instances alone, bounded
	close(stop)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d requests failed during the swap to standard instances", failed.Load(), sent.Load())
	}
	swapIn := retired.Time.Sub(swapped)

	// Warm latency on a standard instance, for comparison.
	var warm []time.Duration
	for range 20 {
		r := h.get(ctx, name, "/rev")
		if !r.ok() {
			t.Fatalf("warm request: %v", r)
		}
		warm = append(warm, r.ttfb)
	}

	// Idle: a reserved instance comes back; nothing ever went to zero.
	idle := time.Now()
	back := h.waitEvent(2*time.Minute, "a reserved instance back", isKind(zeroscale.EventReservedStarted, idle))
	if back.Message == first.Message {
		t.Errorf("the same reserved instance %q came back: want a new one", back.Message)
	}
	h.waitRevision(time.Minute, name, "only the reserved instance", func(r zeroscale.RevisionStatus) bool {
		return r.Name == rev && r.Reserved == 1 && r.AppliedScale == 0 && r.Instances == 1
	})
	h.mu.Lock()
	for _, e := range h.events {
		if e.Kind == zeroscale.EventScaled && e.Revision == rev && e.To == 0 {
			t.Errorf("the revision went to zero (%s): the reserved instance must be ready before the last standard one goes", e)
		}
	}
	h.mu.Unlock()
	var after []time.Duration
	for range 5 {
		r := h.get(ctx, name, "/rev")
		if !r.ok() || r.body != rev+"\n" {
			t.Fatalf("request after idle: %v", r)
		}
		after = append(after, r.ttfb)
	}
	t.Logf("E2E reserved (%s): first byte on the reserved instance %s (first after idle %s, p50 of 5 %s) vs warm standard p50 %s p95 %s; "+
		"swap-in (first request → reserved retired) %s with %d requests, 0 failed; standard → reserved back %s after the last request",
		engine, ms(firstTTFB), ms(after[0]), ms(percentile(after, 50)), ms(percentile(warm, 50)), ms(percentile(warm, 95)),
		ms(swapIn), sent.Load(), ms(back.Time.Sub(idle)))
}

// TestDockerReservedInstance is TestReservedInstance on Docker: the
// reserved container runs with 250m CPU and 128Mi memory.
func TestDockerReservedInstance(t *testing.T) {
	h, spec := newDockerHarness(t, zeroConfig(), 16)
	reservedScenario(t, h, "drsv", spec, "docker")
}
