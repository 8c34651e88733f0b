package docker

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// Reconnect backoff of the event stream: it doubles from the minimum
// after every failure in a row, up to the maximum, and resets once a
// stream stayed up for the maximum.
const (
	eventsMinBackoff = 100 * time.Millisecond
	eventsMaxBackoff = 5 * time.Second
)

// eventLoop consumes the engine's container events for this backend's
// identity (die, oom) and turns them into instance deaths. After every
// (re)connect it re-lists the backend's containers, so a death it missed
// while disconnected is found all the same.
type eventLoop struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (l *eventLoop) start(b *Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go func() {
		defer close(l.done)
		b.consumeEvents(ctx)
	}()
}

func (l *eventLoop) stop() {
	if l.cancel != nil {
		l.cancel()
		<-l.done
	}
}

// consumeEvents runs until ctx ends.
func (b *Backend) consumeEvents(ctx context.Context) {
	clk := b.opts.Clock
	backoff := eventsMinBackoff
	filters := b.ownFilter().Add("type", string(events.ContainerEventType)).
		Add("event", string(events.ActionDie), string(events.ActionOOM))
	for ctx.Err() == nil {
		sctx, cancel := context.WithCancel(ctx)
		// Events returns once the engine answered the subscription, so
		// the re-list below cannot miss an event between the two.
		res := b.cli.Events(sctx, client.EventsListOptions{Filters: filters})
		connected := clk.Now()
		err := b.relist(ctx)
		if err == nil {
			err = b.readEvents(sctx, res)
		}
		cancel()
		if ctx.Err() != nil {
			return
		}
		if clk.Since(connected) >= eventsMaxBackoff {
			backoff = eventsMinBackoff
		}
		b.opts.Logger.Warn("docker event stream lost; reconnecting", "err", err, "in", backoff)
		t := clk.NewTimer(backoff)
		select {
		case <-t.C():
		case <-ctx.Done():
			t.Stop()
			return
		}
		backoff = min(2*backoff, eventsMaxBackoff)
	}
}

// readEvents handles messages until the stream fails.
func (b *Backend) readEvents(ctx context.Context, res client.EventsResult) error {
	for {
		select {
		case m := <-res.Messages:
			b.handleEvent(m)
		case err := <-res.Err:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (b *Backend) handleEvent(m events.Message) {
	b.mu.Lock()
	in := b.byContainer[m.Actor.ID]
	if in != nil && m.Action == events.ActionOOM {
		in.oom = true
	}
	b.mu.Unlock()
	if in != nil && m.Action == events.ActionDie {
		in.markDied()
	}
}

// relist marks dead every instance whose container is gone or no longer
// running, as far as the engine's list says now.
func (b *Backend) relist(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	listed := b.opts.Clock.Now()
	res, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: b.ownFilter()})
	if err != nil {
		return b.engineErr("list containers", err)
	}
	running := make(map[string]bool, len(res.Items))
	for _, c := range res.Items {
		running[c.ID] = c.State == container.StateRunning || c.State == container.StatePaused
	}
	b.mu.Lock()
	var dead []*instance
	for id, in := range b.byContainer {
		// Not started when the list was taken: "created" there, and
		// not dead either.
		if in.target == "" || in.timings.Started.After(listed) {
			continue
		}
		if !running[id] {
			dead = append(dead, in)
		}
	}
	b.mu.Unlock()
	for _, in := range dead {
		in.markDied()
	}
	return nil
}
