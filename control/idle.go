package control

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/zeroscale/zeroscale/internal/hop"
)

// The idle check before scale to zero: the Controller is the
// autoscaler's IdleChecker. It asks the embedder's hook
// (Options.Autoscaler.IdleCheck) first, then, for a revision with
// zeroscale.dev/idle-check-path, every serving instance's app at that
// path through its queue-proxy (outside the stats, so asking is not
// activity): in process with queueproxy.Proxy.CheckIdle, else over HTTP
// with the activator's secret. Any busy answer vetoes; the first error
// stops the check and counts as idle (EventIdleCheckFailed).

// idleAsker is an in-process queue-proxy (a *queueproxy.Proxy as
// backend.Instance.Handler).
type idleAsker interface {
	CheckIdle(ctx context.Context, path string) (bool, error)
}

// maxIdleAnswer bounds what is read of a sidecar's idle check answer.
const maxIdleAnswer = 4 << 10

func (c *Controller) checkIdle(ctx context.Context, name string) (bool, error) {
	if h := c.o.Autoscaler.IdleCheck; h != nil {
		if idle, err := h.CheckIdle(ctx, name); err != nil || !idle {
			return idle, err
		}
	}
	c.mu.Lock()
	r := c.revs[name]
	c.mu.Unlock()
	if r == nil || r.idlePath == "" {
		return true, nil
	}
	r.mu.Lock()
	instances := r.instances
	r.mu.Unlock()
	for _, in := range instances {
		if !in.Serving() {
			continue
		}
		var idle bool
		var err error
		if q, ok := in.Handler.(idleAsker); ok {
			idle, err = q.CheckIdle(ctx, r.idlePath)
		} else {
			idle, err = c.askSidecar(ctx, in.Address, r.idlePath)
		}
		if err != nil {
			return false, fmt.Errorf("instance %s: %w", in.ID, err)
		}
		if !idle {
			return false, nil
		}
	}
	return true, nil
}

// askSidecar asks an out-of-process queue-proxy at addr to check path
// on its app (hop.IdleCheckHeader, trusted by the activator's secret).
func (c *Controller) askSidecar(ctx context.Context, addr, path string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return false, err
	}
	req.Header.Set(hop.IdleCheckHeader, path)
	req.Header.Set(hop.ActivatorHeader, c.secret)
	resp, err := c.idleClient.Do(req)
	if err != nil {
		return false, err
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxIdleAnswer))
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusConflict:
		return false, nil
	}
	return false, fmt.Errorf("idle check %s: %s: %s", path, resp.Status, body)
}

// idleChecked turns an idle check's outcome into events, and tells the
// embedder's Options.Autoscaler.OnIdleCheck.
func (c *Controller) idleChecked(name string, idle bool, err error) {
	switch {
	case err != nil:
		c.emit(Event{Kind: EventIdleCheckFailed, Revision: name, Reason: ReasonIdleCheckFailed,
			Message: err.Error() + " (counted as idle)"})
	case !idle:
		c.emit(Event{Kind: EventIdleBusy, Revision: name, Reason: ReasonBusy,
			Message: "the idle check vetoed scale to zero for one more grace period"})
	}
	if f := c.o.Autoscaler.OnIdleCheck; f != nil {
		f(name, idle, err)
	}
}
