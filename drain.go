package zeroscale

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/backend"
)

// drainSettle is how long drain waits, after the activator stopped
// picking an instance, for a request it picked just before to reach the
// transport (a few function calls, but goroutines can be descheduled).
const drainSettle = 100 * time.Millisecond

// drain is the process backend's DrainFunc. It returns once the
// activator sends nothing more to inst: a snapshot showing inst draining
// (or gone) was applied, and every request the activator started to it
// has finished. Only then may the queue-proxy's own drain, which sees
// requests once they arrive, decide that inst is idle.
func (s *Server) drain(ctx context.Context, inst backend.Instance) error {
	if v, ok := s.revs.Load(inst.Revision); ok {
		if err := v.(*rev).waitNotServing(ctx, inst.ID); err != nil {
			return err
		}
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.o.Clock.After(drainSettle):
	}
	return s.inflight.wait(ctx, inst.Address)
}

// inflightTransport is the activator's transport: it counts requests in
// flight per instance address (until the response body is closed), for
// drain, and sends HTTP/2 requests (gRPC) over h2c, the rest over
// HTTP/1.1 (WebSocket upgrades included).
type inflightTransport struct {
	base, h2c http.RoundTripper

	mu   sync.Mutex
	n    map[string]int
	idle map[string]chan struct{} // closed when n drops to 0
}

// newInflightTransport wraps the activator's default transport settings.
func newInflightTransport() *inflightTransport {
	newT := func() *http.Transport {
		return &http.Transport{
			DialContext:           (&net.Dialer{Timeout: activator.DialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConnsPerHost:   activator.DefaultIdleConnsPerInstance,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true, // pass the client's encodings through
		}
	}
	h2c := newT()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return &inflightTransport{
		base: newT(),
		h2c:  h2c,
		n:    make(map[string]int),
		idle: make(map[string]chan struct{}),
	}
}

func (t *inflightTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	addr := r.URL.Host
	rt := t.base
	if r.ProtoMajor == 2 {
		rt = t.h2c
	}
	t.add(addr, 1)
	resp, err := rt.RoundTrip(r)
	if err != nil {
		t.add(addr, -1)
		return nil, err
	}
	var once sync.Once
	done := func() { once.Do(func() { t.add(addr, -1) }) }
	if rwc, ok := resp.Body.(io.ReadWriteCloser); ok { // an upgraded connection
		resp.Body = &countedConn{ReadWriteCloser: rwc, done: done}
	} else {
		resp.Body = &countedBody{ReadCloser: resp.Body, done: done}
	}
	return resp, nil
}

func (t *inflightTransport) add(addr string, d int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.n[addr] += d
	if t.n[addr] > 0 {
		return
	}
	delete(t.n, addr)
	if ch := t.idle[addr]; ch != nil {
		close(ch)
		delete(t.idle, addr)
	}
}

// wait returns once no request to addr is in flight, or ctx ends.
func (t *inflightTransport) wait(ctx context.Context, addr string) error {
	t.mu.Lock()
	if t.n[addr] == 0 {
		t.mu.Unlock()
		return nil
	}
	ch := t.idle[addr]
	if ch == nil {
		ch = make(chan struct{})
		t.idle[addr] = ch
	}
	t.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
		return nil
	}
}

type countedBody struct {
	io.ReadCloser
	done func()
}

func (b *countedBody) Close() error {
	defer b.done()
	return b.ReadCloser.Close()
}

type countedConn struct {
	io.ReadWriteCloser
	done func()
}

func (c *countedConn) Close() error {
	defer c.done()
	return c.ReadWriteCloser.Close()
}
