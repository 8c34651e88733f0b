package process

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/zeroscale/zeroscale/revision"
)

// aggressiveProbeTimeout bounds one probe attempt while an instance starts,
// as Knative's queue-proxy does (100 ms per attempt, every 50 ms).
const aggressiveProbeTimeout = 100 * time.Millisecond

// prober runs one readiness check of an instance. It is the seam between
// the backend's own probing and a fronting proxy's (see ProxyProber).
type prober interface {
	probe(ctx context.Context) error
}

// tcpProber is ready once addr accepts a connection: Knative's default.
type tcpProber struct{ addr string }

func (p tcpProber) probe(ctx context.Context) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	return c.Close()
}

// httpProber is ready once GET url answers 200–399, as Kubernetes' HTTP
// probes and Knative's queue-proxy count success.
type httpProber struct {
	client *http.Client
	url    string
}

func (p httpProber) probe(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.url, nil)
	if err != nil {
		return err
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	// Drain a bounded amount so the connection can be reused.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 399 {
		return fmt.Errorf("readiness probe GET %s: status %d", p.url, resp.StatusCode)
	}
	return nil
}

// proberFunc adapts a function, e.g. a fronting proxy's own probe.
type proberFunc func(ctx context.Context) error

func (f proberFunc) probe(ctx context.Context) error { return f(ctx) }

// newAppProber probes the app at addr as spec.Readiness says.
func newAppProber(p revision.Probe, addr string, client *http.Client) prober {
	if p.HTTPPath != "" {
		return httpProber{client: client, url: "http://" + addr + p.HTTPPath}
	}
	return tcpProber{addr: addr}
}
