package docker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// aggressiveProbeTimeout bounds one probe attempt while an instance
// starts, as Knative's queue-proxy does (100 ms per attempt).
const aggressiveProbeTimeout = 100 * time.Millisecond

// probeRequest is what probeListening sends: the cheapest request any
// HTTP/1.x server answers (Go's net/http answers it itself, without
// calling the app's handler).
const probeRequest = "OPTIONS * HTTP/1.1\r\nHost: zeroscale-probe\r\nUser-Agent: zeroscale-probe\r\nConnection: close\r\n\r\n"

// errNotListening says the published port answered the TCP handshake but
// nothing listens behind it.
var errNotListening = errors.New("nothing listens behind the published port yet (the engine's port proxy closed the connection)")

// probeListening reports whether the app answers HTTP on its published
// port addr. A TCP connect alone proves nothing there: the engine's
// userland proxy (docker-proxy) accepts on the published port whether or
// not the app listens yet, and closes the connection only after failing
// to reach it; trusting that connect is Sablier's "502 after the
// waiting page". So it sends one HTTP request and wants at least one
// byte back; any status counts, as any answer means the app is up.
func probeListening(ctx context.Context, addr string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := c.Write([]byte(probeRequest)); err != nil {
		return fmt.Errorf("%w: %w", errNotListening, err)
	}
	var b [1]byte
	if n, err := c.Read(b[:]); n == 0 {
		return fmt.Errorf("%w: %w", errNotListening, err)
	}
	return nil
}
