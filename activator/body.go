package activator

import (
	"io"
	"net/http"
	"sync"
	"time"
)

// prefetchChunk is the most one read of a prefetched body asks for.
const prefetchChunk = 32 << 10

// prefetchable reports whether a held request's body is read into memory
// while it waits (see prefetchBody): an HTTP/1 request whose body has a
// declared length within limit and whose client did not ask to be told
// to go on (Expect: 100-continue) before sending it.
func prefetchable(r *http.Request, limit int64) bool {
	return r.ProtoMajor == 1 && r.Body != nil && r.Body != http.NoBody &&
		r.ContentLength > 0 && r.ContentLength <= limit &&
		r.Header.Get("Expect") == ""
}

// prefetchBody reads a held request's body into memory in the
// background and then serves it to the proxy.
//
// Why: net/http's HTTP/1 server watches the connection for a client that
// goes away (and cancels the request context) only once the handler has
// read the body to its end. A held GET has no body, so a client leaving
// frees its place at once; a held POST would keep its place until the
// wait deadline. Reading the body while held makes the server notice the
// client leaving (its read fails, or it reaches EOF and starts its
// background read), so the held request's context is cancelled at once.
//
// Bound: only bodies of a declared length within MaxHeldBytes are
// prefetched, and that length is already charged against the revision's
// MaxHeldBytes, so the bodies of one revision's held requests never take
// more memory than that budget. The buffer is dropped as the proxy
// consumes it. One goroutine per prefetched body, which ends when the
// body ends or fails, and at the latest before the handler returns
// (finish), since net/http forbids reading a body after that.
type prefetchBody struct {
	src  io.ReadCloser
	done chan struct{} // closed when fill returns

	mu     sync.Mutex
	more   *sync.Cond // signalled when buf grows or err is set
	buf    []byte     // read from src, not yet consumed
	err    error      // src's final error (io.EOF at the end)
	closed bool
}

// heldBody starts prefetching a request's body once the request is held
// (acquireReq.onHold); body stays nil if it never was.
type heldBody struct {
	src  io.ReadCloser
	size int64
	body *prefetchBody
}

func (h *heldBody) start() { h.body = newPrefetchBody(h.src, h.size) }

// newPrefetchBody starts reading size bytes of src in the background.
func newPrefetchBody(src io.ReadCloser, size int64) *prefetchBody {
	b := &prefetchBody{src: src, done: make(chan struct{}), buf: make([]byte, 0, size)}
	b.more = sync.NewCond(&b.mu)
	go b.fill(min(size, prefetchChunk))
	return b
}

func (b *prefetchBody) fill(chunkSize int64) {
	defer close(b.done)
	chunk := make([]byte, chunkSize)
	for {
		n, err := b.src.Read(chunk)
		b.mu.Lock()
		if b.closed {
			b.mu.Unlock()
			return
		}
		b.buf = append(b.buf, chunk[:n]...)
		if err != nil {
			b.err = err
		}
		b.more.Broadcast()
		b.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// Read serves the prefetched bytes, waiting for the background read when
// it has not got that far yet.
func (b *prefetchBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.buf) == 0 && b.err == nil && !b.closed {
		b.more.Wait()
	}
	switch {
	case b.closed:
		return 0, http.ErrBodyReadAfterClose
	case len(b.buf) > 0:
		n := copy(p, b.buf)
		b.buf = b.buf[n:]
		if len(b.buf) == 0 {
			b.buf = nil // let the memory go as soon as it is consumed
		}
		return n, nil
	default:
		return 0, b.err
	}
}

// Close drops the buffer and wakes a waiting Read. It does not close src:
// the server does that after the handler returns, which also ends fill.
func (b *prefetchBody) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.closed = true
	b.buf = nil
	b.more.Broadcast()
	return nil
}

// finish ends the background read before the handler returns: net/http
// forbids reading a request body after ServeHTTP. When the client is
// still sending (the request was refused, or the instance answered
// without reading it all), the connection's read deadline is moved to
// the past, which ends that read at once; the server then closes the
// connection after the response, as it would for any body left unread.
// If w cannot set deadlines, fill is left to end when the server closes
// the body (the body's own lock keeps that safe in net/http).
func (b *prefetchBody) finish(w http.ResponseWriter) {
	select {
	case <-b.done:
		return
	default:
	}
	if err := http.NewResponseController(w).SetReadDeadline(time.Unix(1, 0)); err != nil {
		return
	}
	<-b.done
}
