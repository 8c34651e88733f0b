package backend_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/zeroscale/zeroscale/backend"
)

func TestBroadcasterFirstValueIsCurrent(t *testing.T) {
	var b backend.Broadcaster
	ch := b.Watch(t.Context())
	if got := <-ch; len(got) != 0 {
		t.Fatalf("first snapshot of an empty broadcaster = %v, want empty", got)
	}
	b.Publish([]backend.Instance{{ID: "b"}, {ID: "a"}})
	ch2 := b.Watch(t.Context())
	got := <-ch2
	if len(got) != 2 || got[0].ID != "a" || got[1].ID != "b" {
		t.Fatalf("first snapshot of a late watcher = %v, want [a b] sorted", got)
	}
}

// noSnapshot fails t if ch holds a snapshot now: what sent one.
func noSnapshot(t *testing.T, ch <-chan []backend.Instance, what string) {
	t.Helper()
	select {
	case s := <-ch:
		t.Fatalf("%s sent %v", what, s)
	default:
	}
}

func TestBroadcasterNewestReplacesUnread(t *testing.T) {
	var b backend.Broadcaster
	ch := b.Watch(t.Context())
	<-ch
	for i := range 5 {
		b.Publish([]backend.Instance{{ID: fmt.Sprint(i)}})
	}
	got := <-ch
	if len(got) != 1 || got[0].ID != "4" {
		t.Fatalf("snapshot after 5 publishes = %v, want only the newest [4]", got)
	}
	noSnapshot(t, ch, "a second snapshot")
}

func TestBroadcasterSkipsUnchanged(t *testing.T) {
	var b backend.Broadcaster
	ch := b.Watch(t.Context())
	<-ch
	b.Publish(nil)
	noSnapshot(t, ch, "publishing the unchanged snapshot")
}

func TestBroadcasterCopies(t *testing.T) {
	var b backend.Broadcaster
	snap := []backend.Instance{{ID: "a"}}
	b.Publish(snap)
	snap[0].ID = "mutated"
	got := <-b.Watch(t.Context())
	got[0].ID = "mutated too"
	if cur := b.Current(); cur[0].ID != "a" {
		t.Fatalf("Current = %v after callers mutated their slices, want [a]", cur)
	}
}

func TestBroadcasterCloseAndCancel(t *testing.T) {
	var b backend.Broadcaster
	ctx, cancel := context.WithCancel(t.Context())
	cancelled := b.Watch(ctx)
	kept := b.Watch(t.Context())
	<-cancelled
	<-kept
	cancel()
	if _, ok := <-cancelled; ok {
		t.Fatal("channel still open after its ctx was cancelled")
	}
	b.Publish([]backend.Instance{{ID: "a"}})
	if s := <-kept; len(s) != 1 {
		t.Fatalf("other watcher got %v, want [a]", s)
	}
	b.Close()
	b.Close()
	if _, ok := <-kept; ok {
		t.Fatal("channel still open after Close")
	}
	if _, ok := <-b.Watch(t.Context()); ok {
		t.Fatal("Watch after Close returned an open channel")
	}
	b.Publish(nil) // must not panic on closed channels
	if _, ok := <-b.Watch(ctx); ok {
		t.Fatal("Watch with a done ctx returned an open channel")
	}
}

func TestBroadcasterConcurrent(t *testing.T) {
	var b backend.Broadcaster
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ctx, cancel := context.WithCancel(t.Context())
			ch := b.Watch(ctx)
			for j := range 50 {
				b.Publish([]backend.Instance{{ID: fmt.Sprint(i, j)}})
				<-ch
			}
			cancel()
			for range ch { // must end: cancel closes the channel
			}
		})
	}
	wg.Wait()
	b.Close()
	if _, open := <-b.Watch(t.Context()); open {
		t.Error("Watch after Close returned an open channel")
	}
}

func ExampleBroadcaster() {
	var b backend.Broadcaster // one per revision, inside an engine
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch := b.Watch(ctx) // what Backend.Watch returns

	fmt.Println(<-ch) // the current snapshot, at once
	b.Publish([]backend.Instance{{ID: "i-1", Address: "127.0.0.1:9001"}})
	b.Publish([]backend.Instance{{ID: "i-1", Address: "127.0.0.1:9001", Ready: true}})
	s := <-ch // the unread older snapshot was replaced
	fmt.Println(s[0].ID, s[0].Ready)
	b.Close() // revision removed
	_, open := <-ch
	fmt.Println(open)
	// Output:
	// []
	// i-1 true
	// false
}
