package edge

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"k8s.io/utils/clock"
)

// extendStep is how far past the current read deadline a body must have
// earned before the deadline is moved: fewer deadline updates on a fast
// body, none of them late by more than this.
const extendStep = 100 * time.Millisecond

// Bodies bounds the time a request body may take to arrive and answers a
// client's body errors as the client's: the body may take Timeout plus
// one second per MinRate bytes received so far (Apache's mod_reqtimeout
// "body=20,MinRate=500" rule). A client that trickles cannot stretch it:
// one byte a second earns 1/MinRate s a second. The bound is the
// connection's read deadline, so it also ends net/http's own reads of a
// body the handler left unread (net/http reads up to 256 KiB of it before
// it writes a response, even a 404), after which the connection is
// closed.
//
// When a body misses its deadline, or its framing is broken (malformed
// chunked encoding, a client that closed early), before the response
// started, the response is replaced: 408 Request Timeout, or 400 Bad
// Request, with "Connection: close", whatever the handler (typically a
// proxy reporting a failed upstream write) answered. A request that
// holds an instance slot while its body trickles therefore holds it at
// most until this deadline (and never past the revision's request
// timeout).
//
// The connection of an HTTP/1 request with a Transfer-Encoding is closed
// after its response. RFC 9112 §6.1 requires that when a request had
// both Transfer-Encoding and Content-Length (a request-smuggling
// attempt); net/http drops the Content-Length before any handler sees
// the request, so every such request is treated alike: a chunked upload
// costs its connection's reuse.
type Bodies struct {
	Handler http.Handler
	Timeout time.Duration
	MinRate int64 // bytes per second; > 0
	// Clock reads the time the deadlines start from; nil = the real
	// clock. The deadlines themselves are the sockets', in real time.
	Clock clock.PassiveClock
}

func (g *Bodies) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Body == nil || r.Body == http.NoBody {
		g.Handler.ServeHTTP(w, r)
		return
	}
	var clk clock.PassiveClock = clock.RealClock{}
	if g.Clock != nil {
		clk = g.Clock
	}
	rc := http.NewResponseController(w)
	b := &body{src: r.Body, rc: rc, clk: clk, start: clk.Now(), g: g}
	b.deadline = b.start.Add(g.Timeout)
	if err := rc.SetReadDeadline(b.deadline); err != nil {
		// Not a connection net/http can bound (a test recorder): serve as is.
		g.Handler.ServeHTTP(w, r)
		return
	}
	r.Body = b
	bw := &writer{ResponseWriter: w, b: b, closeAfter: r.ProtoMajor == 1 && len(r.TransferEncoding) > 0}
	g.Handler.ServeHTTP(bw, r)
	if !bw.started && (b.verdict != 0 || bw.closeAfter) {
		// The handler wrote nothing: the verdict if there is one (rather
		// than net/http's empty 200), else that 200 with the close.
		bw.WriteHeader(http.StatusOK)
	}
}

// body is a request body read under the rate rule.
type body struct {
	src      io.ReadCloser
	rc       *http.ResponseController
	clk      clock.PassiveClock
	g        *Bodies
	start    time.Time
	deadline time.Time // the connection's read deadline
	n        int64     // bytes read
	eof      bool
	// verdict, once set, is what the client is answered if the
	// response has not started: 408 or 400.
	verdict int
	reason  string
}

func (b *body) Read(p []byte) (int, error) {
	if b.eof || b.verdict != 0 {
		// After EOF net/http may be reading the connection in the
		// background (to see the client leave): no more deadlines.
		return b.src.Read(p)
	}
	n, err := b.src.Read(p)
	b.n += int64(n)
	switch {
	case err == nil:
		b.extend()
	case errors.Is(err, io.EOF):
		b.eof = true
	case errors.Is(err, os.ErrDeadlineExceeded):
		if b.clk.Now().Before(b.deadline) {
			break // someone else's deadline (a handler ending a read)
		}
		b.verdict = http.StatusRequestTimeout
		b.reason = fmt.Sprintf("request body not received in time: %d bytes in %v; a body may take %v plus 1 s per %d bytes",
			b.n, b.clk.Since(b.start).Round(time.Millisecond), b.g.Timeout, b.g.MinRate)
		err = fmt.Errorf("request body: %w", err)
	case errors.Is(err, http.ErrBodyReadAfterClose):
	default:
		// net/http reports the client's broken framing (malformed
		// chunked encoding, a body cut short) from here.
		b.verdict = http.StatusBadRequest
		b.reason = "malformed request body: " + err.Error()
	}
	return n, err
}

// extend moves the read deadline to what the bytes read so far earned.
func (b *body) extend() {
	earned := b.start.Add(b.g.Timeout + time.Duration(float64(b.n)/float64(b.g.MinRate)*float64(time.Second)))
	if earned.Sub(b.deadline) < extendStep {
		return
	}
	if b.rc.SetReadDeadline(earned) == nil {
		b.deadline = earned
	}
}

func (b *body) Close() error { return b.src.Close() }

// writer replaces a response that has not started when the body's
// verdict is in (see Bodies).
type writer struct {
	http.ResponseWriter
	b          *body
	closeAfter bool // close the connection after the response
	started    bool
	replaced   bool
}

func (w *writer) WriteHeader(code int) {
	if w.started || (code >= 100 && code < 200 && code != http.StatusSwitchingProtocols) {
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.started = true
	if w.b.verdict == 0 {
		if w.closeAfter {
			w.Header().Set("Connection", "close")
		}
		w.ResponseWriter.WriteHeader(code)
		return
	}
	w.replaced = true
	h := w.Header()
	clear(h)
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Connection", "close")
	w.ResponseWriter.WriteHeader(w.b.verdict)
	_, _ = io.WriteString(w.ResponseWriter, w.b.reason+"\n")
}

func (w *writer) Write(p []byte) (int, error) {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	if w.replaced {
		return len(p), nil
	}
	return w.ResponseWriter.Write(p)
}

// Flush is the ResponseController's (httputil.ReverseProxy flushes
// streamed responses through it).
func (w *writer) Flush() {
	if !w.started {
		w.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap gives the ResponseController the connection's other controls
// (Hijack, deadlines, full duplex).
func (w *writer) Unwrap() http.ResponseWriter { return w.ResponseWriter }
