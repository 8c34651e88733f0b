package queueproxy

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// Timeout causes, set on the request context when a timeout fires; their
// text is the 504 body.
var (
	errRequestTimeout       = errors.New("request timeout")
	errResponseStartTimeout = errors.New("response start timeout")
	errIdleTimeout          = errors.New("idle timeout")
	errUpgradeDrainLimit    = errors.New("upgraded connection closed by drain")
)

func isTimeout(err error) bool {
	return err == errRequestTimeout || err == errResponseStartTimeout || err == errIdleTimeout
}

const (
	flagWroteHeader uint32 = 1 << iota
	flagTimedOut
	flagHijacked
	flagDone
	flagAnswered // the proxy itself wrote a complete error response
)

// exchange is one proxied request: the ResponseWriter handed to the
// reverse proxy, and the request's timeouts. Timeouts use one runtime
// timer per request, never a goroutine: when it fires it marks the
// exchange timed out and cancels the request context, which aborts the
// upstream call or the queue wait; all writes to the client stay on the
// handler goroutine (finish writes the 504), except that a write blocked
// on a slow client is unblocked with a past write deadline.
type exchange struct {
	p       *Proxy
	w       http.ResponseWriter
	ctx     context.Context
	cancel  context.CancelCauseFunc
	timer   timer
	start   time.Time
	trusted bool
	code    int // status sent, for metrics; handler goroutine only
	span    trace.Span

	flags atomic.Uint32
	// lastWrite is when the response was last written, as nanoseconds
	// since start; only kept when an idle timeout is set.
	lastWrite atomic.Int64
	// mu orders the timer's actions on the connection before the
	// handler's return (flagDone): after that the connection may serve
	// another request.
	mu sync.Mutex
}

func (p *Proxy) newExchange(w http.ResponseWriter, r *http.Request, now time.Time, trusted bool) *exchange {
	ex := &exchange{p: p, w: w, start: now, trusted: trusted, code: http.StatusOK}
	ex.ctx, ex.cancel = context.WithCancelCause(r.Context())
	// Held so a timer that fires at once (a tiny timeout) finds
	// ex.timer set.
	ex.mu.Lock()
	if p.realClock {
		ex.timer = time.AfterFunc(p.firstArm, ex.onTimer)
	} else {
		ex.timer = p.clock.AfterFunc(p.firstArm, ex.onTimer)
	}
	ex.mu.Unlock()
	return ex
}

// timer is what an exchange needs of its timer: a *time.Timer with the
// real clock (one allocation less than clock.RealClock's wrapper), a
// clock.Timer otherwise.
type timer interface {
	Stop() bool
	Reset(time.Duration) bool
}

// onTimer hands the expiry to its own goroutine: a fake clock runs
// AfterFunc callbacks under its lock, which expire's clock calls would
// deadlock on. Expiry is rare; the goroutine costs nothing per request.
func (ex *exchange) onTimer() { go ex.expire() }

func (ex *exchange) expire() {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	f := ex.flags.Load()
	if f&(flagDone|flagHijacked|flagTimedOut) != 0 {
		return
	}
	t := &ex.p.t
	elapsed := ex.p.clock.Since(ex.start)
	var cause error
	next := t.request - elapsed
	switch {
	case next <= 0:
		cause = errRequestTimeout
	case f&flagWroteHeader == 0 && elapsed >= t.responseStart:
		cause = errResponseStartTimeout
	case t.idle > 0:
		idleLeft := t.idle - (elapsed - time.Duration(ex.lastWrite.Load()))
		if idleLeft <= 0 {
			cause = errIdleTimeout
		}
		next = min(next, idleLeft)
	}
	if cause == nil {
		if f&flagWroteHeader == 0 {
			next = min(next, t.responseStart-elapsed)
		}
		ex.timer.Reset(next)
		return
	}
	ex.flags.Or(flagTimedOut)
	ex.cancel(cause)
	if f&flagWroteHeader != 0 {
		// Unblock a write stuck on a slow client so the cut is now.
		_ = http.NewResponseController(ex.w).SetWriteDeadline(time.Unix(1, 0))
	}
}

// writeError answers with a short plain-text body, replacing any header
// the app's response had already set, unless a response was started.
func (ex *exchange) writeError(code int, msg string) {
	if ex.flags.Load()&flagWroteHeader != 0 {
		return
	}
	ex.flags.Or(flagWroteHeader | flagAnswered)
	ex.code = code
	h := ex.w.Header()
	retry := h.Get("Retry-After")
	clear(h)
	if retry != "" {
		h.Set("Retry-After", retry)
	}
	writeText(ex.w, code, msg)
}

// Header returns the client response's header map.
func (ex *exchange) Header() http.Header { return ex.w.Header() }

// WriteHeader sends the status, unless the exchange timed out or a
// status was already sent. 1xx informational statuses pass through.
func (ex *exchange) WriteHeader(code int) {
	if code >= 100 && code < 200 && code != http.StatusSwitchingProtocols {
		ex.w.WriteHeader(code)
		return
	}
	if ex.flags.Load()&(flagWroteHeader|flagTimedOut) != 0 {
		return
	}
	ex.flags.Or(flagWroteHeader)
	ex.code = code
	ex.w.WriteHeader(code)
}

// Write writes to the client; after a timeout it fails with
// http.ErrHandlerTimeout, which makes the reverse proxy abort.
func (ex *exchange) Write(b []byte) (int, error) {
	if err := ex.beforeWrite(); err != nil {
		return 0, err
	}
	return ex.w.Write(b)
}

// FlushError flushes to the client (streams, SSE).
func (ex *exchange) FlushError() error {
	if err := ex.beforeWrite(); err != nil {
		return err
	}
	return http.NewResponseController(ex.w).Flush()
}

// Flush implements http.Flusher.
func (ex *exchange) Flush() { _ = ex.FlushError() }

func (ex *exchange) beforeWrite() error {
	f := ex.flags.Load()
	if f&flagTimedOut != 0 {
		return http.ErrHandlerTimeout
	}
	if f&flagWroteHeader == 0 {
		ex.flags.Or(flagWroteHeader)
	}
	if ex.p.t.idle > 0 {
		ex.lastWrite.Store(int64(ex.p.clock.Since(ex.start)))
	}
	return nil
}

// Hijack takes over the client connection for an upgrade (WebSocket).
// From then on the request timeouts no longer apply; the connection is
// in flight until it closes, and Drain closes it after
// UpgradeDrainLimit.
func (ex *exchange) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	ex.mu.Lock()
	defer ex.mu.Unlock()
	if ex.flags.Load()&flagTimedOut != 0 {
		return nil, nil, http.ErrHandlerTimeout
	}
	conn, brw, err := http.NewResponseController(ex.w).Hijack()
	if err != nil {
		return nil, nil, err
	}
	ex.flags.Or(flagHijacked | flagWroteHeader)
	ex.code = http.StatusSwitchingProtocols
	ex.timer.Stop()
	ex.p.trackUpgrade(ex)
	return conn, brw, nil
}

// Unwrap gives http.ResponseController access to the client writer.
func (ex *exchange) Unwrap() http.ResponseWriter { return ex.w }
