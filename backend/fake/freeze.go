package fake

import (
	"context"
	"fmt"
	"net/http"

	"github.com/zeroscale/zeroscale/backend"
)

var _ backend.Freezer = (*Backend)(nil)

// Freeze freezes every ready instance of the named revision as
// backend.Freezer documents: each is published Frozen, drained through
// Options.Drain (bounded by ctx), and from then on holds every request
// that reaches its Address until it is thawed, as a suspended process
// would. Instances not ready yet are stopped, and the desired scale
// becomes the number of frozen instances.
func (b *Backend) Freeze(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	r, err := b.lookup(name)
	if err != nil {
		b.mu.Unlock()
		return fmt.Errorf("fake: freeze %s: %w", name, err)
	}
	var drain []backend.Instance
	frozen := 0
	for _, in := range r.insts {
		switch {
		case in.stopping:
		case in.Frozen:
			frozen++
		case in.Ready:
			in.Frozen = true
			in.thawed = make(chan struct{})
			frozen++
			drain = append(drain, in.Instance)
		}
	}
	r.desired = frozen
	err = b.settle(r) // stops the instances not ready; publishes
	b.freezes++
	b.mu.Unlock()
	if b.opts.Drain != nil {
		for _, in := range drain {
			if derr := b.opts.Drain(ctx, in); derr != nil {
				b.log.Warn("fake: drain before freeze failed; freezing anyway", "id", in.ID, "err", derr)
			}
		}
	}
	b.log.Debug("fake: frozen", "revision", name, "instances", frozen)
	return err
}

// Thaw resumes every frozen instance of the named revision: the requests
// they held go on, and a snapshot without Frozen is published before it
// returns.
func (b *Backend) Thaw(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	r, err := b.lookup(name)
	if err != nil {
		return fmt.Errorf("fake: thaw %s: %w", name, err)
	}
	for _, in := range r.insts {
		in.thaw()
	}
	b.thaws++
	b.publish(r)
	b.log.Debug("fake: thawed", "revision", name)
	return nil
}

// Freezes returns how many Freeze and Thaw calls found their revision,
// for tests of the layers above.
func (b *Backend) Freezes() (freezes, thaws int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.freezes, b.thaws
}

// thaw ends in's frozen state, releasing the requests it held. b.mu
// must be held.
func (in *instance) thaw() {
	if !in.Frozen {
		return
	}
	in.Frozen = false
	close(in.thawed)
	in.thawed = nil
}

// holdWhileFrozen wraps an instance's handler so that a request reaching
// a frozen instance waits for its thaw (or the client), as the kernel
// holds a connection to a suspended process.
func (b *Backend) holdWhileFrozen(in *instance, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		b.mu.Lock()
		thawed := in.thawed
		b.mu.Unlock()
		if thawed != nil {
			select {
			case <-thawed:
			case <-req.Context().Done():
				return
			}
		}
		h.ServeHTTP(w, req)
	})
}
