package backend

import (
	"cmp"
	"context"
	"net/http"
	"reflect"
	"slices"
	"sync"
)

// Broadcaster fans one revision's instance snapshots out to any number of
// watchers with the channel semantics Backend.Watch promises: each
// channel has capacity 1, the newest snapshot replaces an unread one, the
// first value is the current snapshot, and the channel is closed when the
// watcher's ctx is done or the Broadcaster is closed (revision removed).
// A slow reader therefore only ever misses intermediate states, and a
// publisher never blocks on a reader.
//
// Engines keep one Broadcaster per revision, call Publish with the full
// current snapshot whenever anything about an instance changes, return
// Watch's channel from Backend.Watch, and Close it on Remove.
//
// The zero value is ready to use. All methods are safe for concurrent
// use. Memory is bounded by one snapshot per watcher.
type Broadcaster struct {
	mu       sync.Mutex
	current  []Instance
	watchers map[*watcher]struct{}
	closed   bool
}

type watcher struct {
	ch   chan []Instance
	stop func() bool // unregisters the ctx.Done hook
}

// Watch returns a new channel that receives the current snapshot at once
// and then every snapshot published after it (intermediate ones may be
// skipped if the reader is slow). The channel is closed when ctx is done
// or Close is called; if the Broadcaster is already closed it is returned
// closed.
func (b *Broadcaster) Watch(ctx context.Context) <-chan []Instance {
	w := &watcher{ch: make(chan []Instance, 1)}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || ctx.Err() != nil {
		close(w.ch)
		return w.ch
	}
	if b.watchers == nil {
		b.watchers = make(map[*watcher]struct{})
	}
	b.watchers[w] = struct{}{}
	w.ch <- slices.Clone(b.current)
	// context.AfterFunc starts no goroutine until ctx is done.
	w.stop = context.AfterFunc(ctx, func() { b.drop(w) })
	return w.ch
}

// drop unregisters w and closes its channel, unless Close already did.
func (b *Broadcaster) drop(w *watcher) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.watchers[w]; ok {
		delete(b.watchers, w)
		close(w.ch)
	}
}

// Publish makes snap the current snapshot and offers it to every watcher,
// replacing a snapshot the watcher has not read yet. It copies snap and
// sorts the copy by instance ID, so snapshots are deterministic and
// callers may reuse snap. A snapshot equal to the current one is not
// sent again. Publish after Close does nothing.
func (b *Broadcaster) Publish(snap []Instance) {
	s := slices.Clone(snap)
	slices.SortFunc(s, func(a, b Instance) int { return cmp.Compare(a.ID, b.ID) })
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed || slices.EqualFunc(s, b.current, sameInstance) {
		return
	}
	b.current = s
	for w := range b.watchers {
		// Only Publish sends, under b.mu, so after emptying the slot
		// the send cannot block.
		select {
		case <-w.ch:
		default:
		}
		w.ch <- slices.Clone(s)
	}
}

// Current returns a copy of the current snapshot.
func (b *Broadcaster) Current() []Instance {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.current)
}

// Close closes every watcher's channel; later Watch calls get a closed
// channel and later Publish calls do nothing. Close is idempotent.
func (b *Broadcaster) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	for w := range b.watchers {
		w.stop()
		close(w.ch)
	}
	b.watchers = nil
}

func sameInstance(a, b Instance) bool {
	return a.ID == b.ID && a.Revision == b.Revision && a.Address == b.Address &&
		a.Ready == b.Ready && a.Draining == b.Draining && a.Frozen == b.Frozen && a.Started.Equal(b.Started) &&
		sameHandler(a.Handler, b.Handler)
}

// sameHandler compares handlers without panicking on an uncomparable
// one (an http.HandlerFunc), which counts as changed.
func sameHandler(a, b http.Handler) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	t := reflect.TypeOf(a)
	return t == reflect.TypeOf(b) && t.Comparable() && a == b
}
