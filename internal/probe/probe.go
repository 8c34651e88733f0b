// Package probe checks an app's readiness as a revision.Probe says. The
// queue-proxy and the engines that probe apps themselves share it. Not
// public API.
package probe

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/zeroscale/zeroscale/revision"
)

// App checks an app's readiness as a revision.Probe says: a TCP
// connect to its address, or an HTTP GET of the probe path answered
// 200–399 (Knative's success range; a redirect is not followed). Each
// attempt is bounded by the probe's Timeout (default
// revision.DefaultProbeTimeout) and by its ctx. The Proxy probes its
// Upstream with one; a host can probe an app with one too. Build it with
// NewApp; it is safe for concurrent use.
type App struct {
	addr   string
	url    string       // "" for TCP probes
	client *http.Client // nil for TCP probes
	dialer net.Dialer
}

// NewApp returns an App of the app at addr (host:port).
func NewApp(addr string, p revision.Probe) *App {
	a := &App{addr: addr}
	a.dialer.Timeout = cmp.Or(p.Timeout, revision.DefaultProbeTimeout)
	if p.HTTPPath != "" {
		a.url = "http://" + addr + p.HTTPPath
		a.client = &http.Client{
			Timeout: a.dialer.Timeout,
			Transport: &http.Transport{
				DialContext:       a.dialer.DialContext,
				DisableKeepAlives: true,
			},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	return a
}

// Check runs one attempt now: nil if the app is ready, else why not.
func (a *App) Check(ctx context.Context) error {
	if a.client == nil {
		c, err := a.dialer.DialContext(ctx, "tcp", a.addr)
		if err != nil {
			return err
		}
		return c.Close()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "zeroscale-probe")
	res, err := a.client.Do(req)
	if err != nil {
		return err
	}
	// A bounded drain, so a chatty health endpoint cannot hold the probe.
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 4096))
	_ = res.Body.Close()
	if res.StatusCode < 200 || res.StatusCode > 399 {
		return fmt.Errorf("readiness probe GET %s: status %d", a.url, res.StatusCode)
	}
	return nil
}
