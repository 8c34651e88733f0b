package backend_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
)

func TestBroadcasterFirstValueIsCurrent(t *testing.T) {
	var b backend.Broadcaster
	ch := b.Watch(t.Context())
	require.Empty(t, <-ch, "first snapshot of an empty broadcaster")
	b.Publish([]backend.Instance{{ID: "b"}, {ID: "a"}})
	ch2 := b.Watch(t.Context())
	require.Equal(t, []string{"a", "b"}, ids(<-ch2), "first snapshot of a late watcher, sorted")
}

// ids are the snapshot's instance IDs, in order.
func ids(snap []backend.Instance) []string {
	out := []string{}
	for _, in := range snap {
		out = append(out, in.ID)
	}
	return out
}

// noSnapshot fails t if ch holds a snapshot now: what sent one.
func noSnapshot(t *testing.T, ch <-chan []backend.Instance, what string) {
	t.Helper()
	select {
	case s := <-ch:
		require.Failf(t, "unexpected snapshot", "%s sent %v", what, s)
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
	require.Equal(t, []string{"4"}, ids(<-ch), "after 5 publishes only the newest")
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
	require.Equal(t, []string{"a"}, ids(b.Current()), "after callers mutated their slices")
}

func TestBroadcasterCloseAndCancel(t *testing.T) {
	var b backend.Broadcaster
	ctx, cancel := context.WithCancel(t.Context())
	cancelled := b.Watch(ctx)
	kept := b.Watch(t.Context())
	<-cancelled
	<-kept
	cancel()
	_, ok := <-cancelled
	require.False(t, ok, "channel still open after its ctx was cancelled")
	b.Publish([]backend.Instance{{ID: "a"}})
	require.Equal(t, []string{"a"}, ids(<-kept), "the other watcher")
	b.Close()
	b.Close()
	_, ok = <-kept
	require.False(t, ok, "channel still open after Close")
	_, ok = <-b.Watch(t.Context())
	require.False(t, ok, "Watch after Close returned an open channel")
	b.Publish(nil) // must not panic on closed channels
	_, ok = <-b.Watch(ctx)
	require.False(t, ok, "Watch with a done ctx returned an open channel")
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
	_, open := <-b.Watch(t.Context())
	assert.False(t, open, "Watch after Close returned an open channel")
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
