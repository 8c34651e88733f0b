package breaker

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func mustBreaker(t testing.TB, p Params) *Breaker {
	t.Helper()
	b, err := New(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// waitTimeout bounds the waits for the tests' goroutines to reach a
// state (no clock involved: the clocks are fake).
const waitTimeout = 10 * time.Second

func TestNewBreakerValidation(t *testing.T) {
	for _, tc := range []struct {
		p     Params
		field string
	}{
		{Params{MaxConcurrency: -1}, "MaxConcurrency"},
		{Params{MaxConcurrency: math.MaxInt32 + 1}, "MaxConcurrency"},
		{Params{MaxConcurrency: 1, QueueDepth: -1}, "QueueDepth"},
		{Params{MaxConcurrency: 1, InitialCapacity: 2}, "InitialCapacity"},
		{Params{MaxConcurrency: 1, InitialCapacity: -1}, "InitialCapacity"},
		{Params{InitialCapacity: 1}, "InitialCapacity"},
	} {
		_, err := New(tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v) = %v, want error naming %s", tc.p, err, tc.field)
		}
	}
}

func TestNilBreakerAdmitsEverything(t *testing.T) {
	b := mustBreaker(t, Params{})
	if b != nil {
		t.Fatalf("MaxConcurrency 0: got %v, want nil breaker", b)
	}
	for range 100 {
		if err := b.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
		if !b.TryAcquire() {
			t.Fatal("TryAcquire on nil breaker = false")
		}
	}
	b.Release()
	b.SetCapacity(5)
	if b.Capacity() != 0 || b.InFlight() != 0 || b.Pending() != 0 || b.MaxPending() != 0 {
		t.Error("nil breaker counters not zero")
	}
}

// Knative's CC=1 case: 1 running + 10 queued (default depth 10 × CC);
// the 12th concurrent request is rejected at once.
func TestBreakerQueueFull(t *testing.T) {
	b := mustBreaker(t, Params{MaxConcurrency: 1, InitialCapacity: 1})
	if got := b.MaxPending(); got != 11 {
		t.Fatalf("MaxPending = %d, want 11", got)
	}
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	var done sync.WaitGroup
	var admitted atomic.Int32
	release := make(chan struct{})
	for range 10 {
		done.Go(func() {
			if err := b.Acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			admitted.Add(1)
			<-release
			b.Release()
		})
	}
	require.Eventually(t, func() bool { return b.Pending() == 11 }, waitTimeout, time.Millisecond)
	if err := b.Acquire(ctx); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("12th Acquire = %v, want ErrQueueFull", err)
	}
	if b.TryAcquire() {
		t.Fatal("TryAcquire with full queue = true")
	}
	if got := admitted.Load(); got != 0 {
		t.Fatalf("%d queued requests ran while capacity was 1 and taken", got)
	}
	if b.InFlight() != 1 {
		t.Fatalf("InFlight = %d, want 1", b.InFlight())
	}
	close(release)
	b.Release()
	done.Wait()
	if admitted.Load() != 10 || b.Pending() != 0 || b.InFlight() != 0 {
		t.Fatalf("after drain: admitted %d, pending %d, in flight %d", admitted.Load(), b.Pending(), b.InFlight())
	}
}

func TestBreakerCapacityChangeDoesNotPreempt(t *testing.T) {
	b := mustBreaker(t, Params{MaxConcurrency: 3, InitialCapacity: 3, QueueDepth: 5})
	ctx := context.Background()
	for range 3 {
		if err := b.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	b.SetCapacity(1)
	if b.InFlight() != 3 || b.Capacity() != 1 {
		t.Fatalf("after lowering: in flight %d (want 3), capacity %d (want 1)", b.InFlight(), b.Capacity())
	}
	got := make(chan error, 1)
	go func() { got <- b.Acquire(ctx) }()
	require.Eventually(t, func() bool { return b.Pending() == 4 }, waitTimeout, time.Millisecond)
	b.Release() // 2 in flight, capacity 1: the waiter must keep waiting
	b.Release() // 1 in flight: still no room
	select {
	case err := <-got:
		t.Fatalf("waiter admitted with in-flight ≥ capacity: %v", err)
	default:
	}
	b.Release() // 0 in flight
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// Raising capacity wakes waiters.
	b.SetCapacity(0)
	b.Release()
	for range 2 {
		go func() { got <- b.Acquire(ctx) }()
	}
	require.Eventually(t, func() bool { return b.Pending() == 2 }, waitTimeout, time.Millisecond)
	b.SetCapacity(100) // clamped to MaxConcurrency
	for range 2 {
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	if b.Capacity() != 3 || b.InFlight() != 2 {
		t.Fatalf("capacity %d (want 3), in flight %d (want 2)", b.Capacity(), b.InFlight())
	}
}

func TestBreakerAcquireHonoursContext(t *testing.T) {
	b := mustBreaker(t, Params{MaxConcurrency: 1, InitialCapacity: 1})
	if !b.TryAcquire() {
		t.Fatal("TryAcquire on idle breaker = false")
	}
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() { got <- b.Acquire(ctx) }()
	require.Eventually(t, func() bool { return b.Pending() == 2 }, waitTimeout, time.Millisecond)
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("Acquire = %v, want context.Canceled", err)
	}
	if b.Pending() != 1 {
		t.Fatalf("Pending after cancelled wait = %d, want 1", b.Pending())
	}
	b.Release()
}

func TestBreakerReleaseWithoutAcquirePanics(t *testing.T) {
	b := mustBreaker(t, Params{MaxConcurrency: 1, InitialCapacity: 1})
	defer func() {
		if recover() == nil {
			t.Error("Release without Acquire did not panic")
		}
	}()
	b.Release()
}

// Many goroutines hammering a small breaker never exceed its capacity
// and every admitted request gets through (no lost wake-ups).
func TestBreakerStress(t *testing.T) {
	const capacity, workers, rounds = 3, 16, 300
	b := mustBreaker(t, Params{MaxConcurrency: capacity, InitialCapacity: capacity, QueueDepth: workers})
	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				if (w+i)%7 == 0 {
					b.SetCapacity(1 + (w+i)%capacity)
				}
				if err := b.Acquire(context.Background()); err != nil {
					t.Error(err)
					return
				}
				n := running.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				running.Add(-1)
				b.Release()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > capacity {
		t.Fatalf("peak concurrency %d > MaxConcurrency %d", p, capacity)
	}
	if b.Pending() != 0 || b.InFlight() != 0 {
		t.Fatalf("pending %d, in flight %d after all released", b.Pending(), b.InFlight())
	}
}

// Waiters are served in arrival order.
func TestBreakerFIFO(t *testing.T) {
	b := mustBreaker(t, Params{MaxConcurrency: 1, InitialCapacity: 1})
	ctx := context.Background()
	if err := b.Acquire(ctx); err != nil {
		t.Fatal(err)
	}
	order := make(chan int, 5)
	for i := range 5 {
		go func() {
			if err := b.Acquire(ctx); err != nil {
				t.Error(err)
				return
			}
			order <- i
		}()
		// Counted under the queue lock with the push, so pushes keep order.
		require.Eventually(t, func() bool { return b.waiters.Load() == int64(i+1) }, waitTimeout, time.Millisecond)
	}
	for want := range 5 {
		b.Release()
		if got := <-order; got != want {
			t.Fatalf("served waiter %d, want %d", got, want)
		}
	}
	b.Release()
}

// Waiters giving up (some just as a slot is handed to them) never leak
// capacity or pending slots.
func TestBreakerCancelStress(t *testing.T) {
	b := mustBreaker(t, Params{MaxConcurrency: 2, InitialCapacity: 2, QueueDepth: 64})
	var wg sync.WaitGroup
	for w := range 32 {
		wg.Go(func() {
			for i := range 200 {
				ctx, cancel := context.WithCancel(context.Background())
				if (w+i)%3 == 0 {
					cancel()
				}
				err := b.Acquire(ctx)
				cancel()
				switch {
				case err == nil:
					b.Release()
				case errors.Is(err, context.Canceled), errors.Is(err, ErrQueueFull):
				default:
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Pending() != 0 || b.InFlight() != 0 || b.waiters.Load() != 0 {
		t.Fatalf("leaked: pending %d, in flight %d, waiters %d", b.Pending(), b.InFlight(), b.waiters.Load())
	}
	// Still fully usable.
	for range 2 {
		if !b.TryAcquire() {
			t.Fatal("capacity leaked")
		}
	}
}

// A slot handed to a waiter whose context ends at the same moment is
// passed on, not leaked. Which of the two the waiter sees is up to the
// runtime, so the race is repeated until the waiter gave up at least once.
func TestBreakerHandOffRacesCancel(t *testing.T) {
	ctx := context.Background()
	gaveUp := 0
	for i := 0; i < 1000 && gaveUp == 0; i++ {
		b := mustBreaker(t, Params{MaxConcurrency: 1, InitialCapacity: 1})
		if err := b.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithCancel(ctx)
		got := make(chan error)
		go func() { got <- b.Acquire(wctx) }()
		require.Eventually(t, func() bool { return b.waiters.Load() == 1 }, waitTimeout, time.Millisecond)
		b.mu.Lock()
		cancel()
		// Release the held slot and hand it over, as Release does.
		b.state.Store(pack(1, 0))
		b.pending.Add(-1)
		b.serveLocked()
		b.mu.Unlock()
		if err := <-got; err == nil {
			b.Release()
		} else {
			gaveUp++
		}
		if b.InFlight() != 0 || b.Pending() != 0 || !b.TryAcquire() {
			t.Fatalf("slot leaked: in flight %d, pending %d", b.InFlight(), b.Pending())
		}
	}
	if gaveUp == 0 {
		t.Fatal("the waiter never gave up with a slot handed to it")
	}
}

func BenchmarkBreakerUncontended(b *testing.B) {
	br := mustBreaker(b, Params{MaxConcurrency: 10, InitialCapacity: 10})
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := br.Acquire(ctx); err != nil {
			b.Fatal(err)
		}
		br.Release()
	}
}

func BenchmarkBreakerParallel(b *testing.B) {
	benchParallel(b, mustBreaker(b, Params{MaxConcurrency: 1000, InitialCapacity: 1000}), 1)
}

// Contended: more goroutines than capacity, so requests queue.
func BenchmarkBreakerContended(b *testing.B) {
	benchParallel(b, mustBreaker(b, Params{MaxConcurrency: 2, InitialCapacity: 2, QueueDepth: 1 << 20}), 8)
}

func benchParallel(b *testing.B, br *Breaker, parallelism int) {
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(parallelism)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := br.Acquire(ctx); err != nil {
				b.Error(err)
				return
			}
			br.Release()
		}
	})
}
