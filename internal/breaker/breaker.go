package breaker

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
)

// ErrQueueFull is returned by Breaker.Acquire when every pending
// slot (running plus queued) is taken. Callers answer 503 at once.
var ErrQueueFull = errors.New("pending request queue full")

// Params configure a Breaker, Knative's queue.Params.
type Params struct {
	// QueueDepth is how many requests may wait for capacity beyond the
	// MaxConcurrency that may run. 0 means DefaultQueueDepthFactor ×
	// MaxConcurrency; otherwise 1–MaxInt32.
	QueueDepth int
	// MaxConcurrency is the most requests that may run at once, and the
	// upper bound of SetCapacity. 0 means unlimited: New then
	// returns a nil *Breaker, which admits everything. At most MaxInt32.
	MaxConcurrency int
	// InitialCapacity is the capacity the breaker starts with, 0 to
	// MaxConcurrency. The activator starts at 0 (no instances yet); a
	// queue-proxy starts at MaxConcurrency.
	InitialCapacity int
}

// DefaultQueueDepthFactor is Knative's queue depth: 10 × the container
// concurrency.
const DefaultQueueDepthFactor = 10

// Breaker bounds the requests running against an instance (capacity)
// and the requests waiting for it (queue depth). A request first takes
// one of QueueDepth+MaxConcurrency pending slots, failing at once with
// ErrQueueFull when none is left, then waits for capacity.
//
// The uncontended path is lock-free and allocation-free: the pending
// count and the packed (capacity, in-flight) state are atomics. Only
// when requests must wait does a mutex guard the queue of waiters.
// Waiters are served in arrival order and woken only with a slot
// already taken for them, so none wakes in vain; a request arriving
// just as capacity frees may still take it first (Knative gives no
// order at all).
//
// A nil *Breaker is valid and means "no limit": Acquire and TryAcquire
// always succeed, Release and SetCapacity do nothing, and the counters
// read 0. All methods are safe for concurrent use.
type Breaker struct {
	maxPending     int64
	maxConcurrency int64
	pending        atomic.Int64
	// state packs capacity (high 32 bits) and in-flight (low 32 bits)
	// so that "in-flight < capacity, then in-flight++" is one CAS.
	state atomic.Uint64
	// waiters counts queued requests; Release and SetCapacity take mu
	// only when it is not zero.
	waiters atomic.Int64

	mu         sync.Mutex
	head, tail *waiter // FIFO of waiting requests
	pool       sync.Pool
}

// waiter is one request waiting for capacity.
type waiter struct {
	// ready receives one token once a slot was taken for the waiter.
	ready      chan struct{}
	prev, next *waiter
	queued     bool
}

// New returns a Breaker for p, or a nil *Breaker (no limit) when
// p.MaxConcurrency is 0. Out-of-range fields fail with an error naming
// the field.
func New(p Params) (*Breaker, error) {
	if p.MaxConcurrency < 0 || p.MaxConcurrency > math.MaxInt32 {
		return nil, fmt.Errorf("breaker: Params.MaxConcurrency = %d, want 0 (unlimited) to %d", p.MaxConcurrency, math.MaxInt32)
	}
	if p.QueueDepth < 0 || p.QueueDepth > math.MaxInt32 {
		return nil, fmt.Errorf("breaker: Params.QueueDepth = %d, want 0 (default %d × MaxConcurrency) to %d", p.QueueDepth, DefaultQueueDepthFactor, math.MaxInt32)
	}
	if p.InitialCapacity < 0 || p.InitialCapacity > p.MaxConcurrency {
		return nil, fmt.Errorf("breaker: Params.InitialCapacity = %d, want 0 to MaxConcurrency (%d)", p.InitialCapacity, p.MaxConcurrency)
	}
	if p.MaxConcurrency == 0 {
		return nil, nil
	}
	depth := int64(p.QueueDepth)
	if depth == 0 {
		depth = min(DefaultQueueDepthFactor*int64(p.MaxConcurrency), math.MaxInt32)
	}
	maxPending := depth + int64(p.MaxConcurrency)
	b := &Breaker{
		maxPending:     maxPending,
		maxConcurrency: int64(p.MaxConcurrency),
	}
	b.pool.New = func() any { return &waiter{ready: make(chan struct{}, 1)} }
	b.state.Store(pack(uint64(p.InitialCapacity), 0))
	return b, nil
}

func pack(capacity, inFlight uint64) uint64 { return capacity<<32 | inFlight }

func unpack(s uint64) (capacity, inFlight uint64) { return s >> 32, s & math.MaxUint32 }

// Acquire takes a pending slot and then waits for capacity. It fails
// immediately with ErrQueueFull when no pending slot is left, and
// with ctx.Err() when ctx ends while waiting. After a nil error the
// caller must call Release exactly once.
func (b *Breaker) Acquire(ctx context.Context) error {
	if b == nil {
		return nil
	}
	if !b.takePending() {
		return ErrQueueFull
	}
	if b.tryTake() {
		return nil
	}
	if err := b.wait(ctx); err != nil {
		b.pending.Add(-1)
		return err
	}
	return nil
}

// wait queues until a releaser takes a slot for this request, or ctx
// ends. Counting itself in waiters before its last check, under mu,
// closes the race with a Release that frees a slot meanwhile: that
// Release sees the count and serves the queue after the push.
func (b *Breaker) wait(ctx context.Context) error {
	b.mu.Lock()
	b.waiters.Add(1)
	if b.tryTake() {
		b.waiters.Add(-1)
		b.mu.Unlock()
		return nil
	}
	w := b.pool.Get().(*waiter)
	b.push(w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		b.pool.Put(w)
		return nil
	case <-ctx.Done():
	}
	b.mu.Lock()
	if w.queued {
		b.unlink(w)
		b.waiters.Add(-1)
		b.mu.Unlock()
		b.pool.Put(w)
		return ctx.Err()
	}
	b.mu.Unlock()
	// A slot was taken for us just as ctx ended: pass it on.
	<-w.ready
	b.pool.Put(w)
	b.releaseSlot()
	return ctx.Err()
}

func (b *Breaker) push(w *waiter) {
	w.queued, w.prev, w.next = true, b.tail, nil
	if b.tail != nil {
		b.tail.next = w
	} else {
		b.head = w
	}
	b.tail = w
}

func (b *Breaker) unlink(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		b.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		b.tail = w.prev
	}
	w.queued, w.prev, w.next = false, nil, nil
}

// serveQueue hands free capacity to waiters, oldest first.
func (b *Breaker) serveQueue() {
	b.mu.Lock()
	b.serveLocked()
	b.mu.Unlock()
}

func (b *Breaker) serveLocked() {
	for b.head != nil && b.tryTake() {
		w := b.head
		b.unlink(w)
		b.waiters.Add(-1)
		w.ready <- struct{}{}
	}
}

// TryAcquire takes a pending slot and capacity only if both are free
// right now, never queueing (Knative's Reserve). After true the caller
// must call Release exactly once.
func (b *Breaker) TryAcquire() bool {
	if b == nil {
		return true
	}
	if !b.takePending() {
		return false
	}
	if b.tryTake() {
		return true
	}
	b.pending.Add(-1)
	return false
}

// Release returns the capacity and the pending slot taken by a
// successful Acquire or TryAcquire. Calling it more often than those
// succeeded is a bug in the caller and panics, like unlocking an
// unlocked sync.Mutex.
func (b *Breaker) Release() {
	if b == nil {
		return
	}
	b.releaseSlot()
	b.pending.Add(-1)
}

// releaseSlot gives back one unit of in-flight capacity and serves the
// queue if someone waits.
func (b *Breaker) releaseSlot() {
	for {
		old := b.state.Load()
		capacity, in := unpack(old)
		if in == 0 {
			panic("breaker: Breaker.Release without a matching Acquire")
		}
		if b.state.CompareAndSwap(old, pack(capacity, in-1)) {
			break
		}
	}
	if b.waiters.Load() > 0 {
		b.serveQueue()
	}
}

// SetCapacity changes how many requests may run at once, clamped to
// [0, MaxConcurrency]. Lowering it never pre-empts running requests:
// waiters resume only once in-flight drops below the new capacity.
func (b *Breaker) SetCapacity(n int) {
	if b == nil {
		return
	}
	c := uint64(min(max(int64(n), 0), b.maxConcurrency))
	for {
		old := b.state.Load()
		oldCap, in := unpack(old)
		if b.state.CompareAndSwap(old, pack(c, in)) {
			if c > oldCap && b.waiters.Load() > 0 {
				b.serveQueue()
			}
			return
		}
	}
}

// Capacity is how many requests may run at once right now.
func (b *Breaker) Capacity() int {
	if b == nil {
		return 0
	}
	c, _ := unpack(b.state.Load())
	return int(c)
}

// InFlight is how many requests hold capacity (are running).
func (b *Breaker) InFlight() int {
	if b == nil {
		return 0
	}
	_, in := unpack(b.state.Load())
	return int(in)
}

// Pending is how many requests hold a pending slot: running plus
// waiting for capacity.
func (b *Breaker) Pending() int {
	if b == nil {
		return 0
	}
	return int(b.pending.Load())
}

// MaxPending is QueueDepth + MaxConcurrency: the most requests the
// breaker holds before it rejects with ErrQueueFull.
func (b *Breaker) MaxPending() int {
	if b == nil {
		return 0
	}
	return int(b.maxPending)
}

// takePending uses a CAS rather than add-then-undo so that a burst of
// rejected requests cannot transiently push the count over the limit
// and reject a request that would have fit.
func (b *Breaker) takePending() bool {
	for {
		p := b.pending.Load()
		if p >= b.maxPending {
			return false
		}
		if b.pending.CompareAndSwap(p, p+1) {
			return true
		}
	}
}

func (b *Breaker) tryTake() bool {
	for {
		old := b.state.Load()
		capacity, in := unpack(old)
		if in >= capacity {
			return false
		}
		if b.state.CompareAndSwap(old, pack(capacity, in+1)) {
			return true
		}
	}
}
