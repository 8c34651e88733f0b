package queueproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// ErrIdleCheck is wrapped by CheckIdle when the app's answer is neither
// 200 (idle) nor 409 (busy), or it cannot be asked.
var ErrIdleCheck = errors.New("queueproxy: idle check failed")

// maxIdleCheckBody bounds what is read of an idle check's answer (it is
// discarded; reading it lets the connection be reused).
const maxIdleCheckBody = 4 << 10

// CheckIdle asks the app whether it is idle: a GET of path (starting with
// "/") on the app directly, outside the stats, the breaker and the
// request timeouts, so that asking does not itself count as activity.
// 200 means idle, 409 busy; any other answer, or none before ctx ends,
// is an error wrapping ErrIdleCheck. Bound it with ctx.
func (p *Proxy) CheckIdle(ctx context.Context, path string) (idle bool, err error) {
	if !strings.HasPrefix(path, "/") {
		return false, fmt.Errorf("%w: path %q does not start with /", ErrIdleCheck, path)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.opts.Upstream+path, nil)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrIdleCheck, err)
	}
	resp, err := p.rp.Transport.RoundTrip(req)
	if err != nil {
		return false, fmt.Errorf("%w: %w", ErrIdleCheck, err)
	}
	_, _ = io.CopyN(io.Discard, resp.Body, maxIdleCheckBody)
	_ = resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusConflict:
		return false, nil
	}
	return false, fmt.Errorf("%w: GET %s answered %s, want 200 (idle) or 409 (busy)", ErrIdleCheck, path, resp.Status)
}

// serveIdleCheck answers a trusted hop.IdleCheckHeader request with the
// app's verdict: 200, 409, or 502 with the reason.
func (p *Proxy) serveIdleCheck(w http.ResponseWriter, r *http.Request, path string) {
	idle, err := p.CheckIdle(r.Context(), path)
	switch {
	case err != nil:
		writeText(w, http.StatusBadGateway, err.Error())
	case idle:
		writeText(w, http.StatusOK, "idle")
	default:
		writeText(w, http.StatusConflict, "busy")
	}
}
