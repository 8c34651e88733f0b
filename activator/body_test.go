package activator

import (
	"bufio"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
)

// A held POST whose client goes away frees its place at once, before any
// deadline (the fake clock never moves), whether its body was complete or
// cut short.
func TestClientLeavingHeldPostFreesPlace(t *testing.T) {
	for _, tc := range []struct{ name, head, body string }{
		{"whole body", "Content-Length: 5", "hello"},
		{"body cut short", "Content-Length: 10", "hello"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, 1, func(o *Options) { o.MaxHeldRequests = 1 })
			c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
			require.NoError(t, err)
			_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\n"+tc.head+"\r\n\r\n"+tc.body)
			require.NoError(t, err)
			e.waitHeld(t, 1)
			require.NoError(t, c.Close())
			e.waitHeld(t, 0)
			require.Eventually(t, func() bool { return e.counter("requests", rev, "499") == 1 }, 10*time.Second, time.Millisecond)

			// The place is free: the next request is held, then served.
			next := e.do(t.Context(), http.MethodPost, "/", strings.NewReader("again"), nil)
			e.waitHeld(t, 1)
			a := newUpstream(t, "a", false)
			require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
			r := wait(t, next)
			assert.Equal(t, http.StatusOK, r.code)
			assert.Equal(t, "ok a again", r.body)
		})
	}
}

// Bodies read while held reach the instance whole, and so do bodies of
// unknown length, which are streamed as before. (A body over the budget,
// also streamed, is TestHeldBytesBound's.)
func TestHeldBodiesForwardedWhole(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.MaxHeldBytes = 1 << 20 })
	small := strings.Repeat("s", 100<<10) // prefetched, several chunks
	res := []<-chan result{
		e.do(t.Context(), http.MethodPost, "/", strings.NewReader(small), nil),
	}
	e.waitHeld(t, 1)
	// io.MultiReader hides the length: sent chunked, streamed.
	res = append(res, e.do(t.Context(), http.MethodPost, "/", io.MultiReader(strings.NewReader("chunked")), nil))
	e.waitHeld(t, 2)

	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	for i, want := range []string{small, "chunked"} {
		r := wait(t, res[i])
		assert.Equal(t, http.StatusOK, r.code)
		require.Equal(t, "ok a "+want, r.body, "request %d", i)
	}
}

func TestPrefetchable(t *testing.T) {
	req := func(proto int, body io.Reader, n int64, expect string) *http.Request {
		r, err := http.NewRequest(http.MethodPost, "http://x/", body)
		require.NoError(t, err)
		r.ProtoMajor, r.ContentLength = proto, n
		if expect != "" {
			r.Header.Set("Expect", expect)
		}
		return r
	}
	body := strings.NewReader("hello")
	assert.Equal(t, true, prefetchable(req(1, body, 5, ""), 5))
	assert.Equal(t, false, prefetchable(req(1, body, 6, ""), 5), "over the limit")
	assert.Equal(t, false, prefetchable(req(1, body, -1, ""), 5), "unknown length")
	assert.Equal(t, false, prefetchable(req(2, body, 5, ""), 5), "HTTP/2 notices a client leaving by itself")
	assert.Equal(t, false, prefetchable(req(1, body, 5, "100-continue"), 5), "client waits to be told to send")
	assert.Equal(t, false, prefetchable(req(1, nil, 0, ""), 5), "no body")
}

func TestPrefetchBodyReadAndClose(t *testing.T) {
	b := newPrefetchBody(io.NopCloser(strings.NewReader("hello")), 5)
	got, err := io.ReadAll(b)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(got))

	pr, pw := io.Pipe()
	b = newPrefetchBody(pr, 5)
	done := make(chan error, 1)
	go func() {
		_, err := b.Read(make([]byte, 5))
		done <- err
	}()
	require.NoError(t, b.Close())
	assert. // wakes the waiting Read
		Equal(t, http.ErrBodyReadAfterClose, <-done)
	// A ResponseWriter without deadlines: finish does not wait for fill.
	b.finish(httptest.NewRecorder())
	require.NoError(t, pw.Close()) // ends fill
	<-b.done
	b.finish(httptest.NewRecorder()) // fill over: returns at once
}

// A declared Content-Length near math.MaxInt64 is charged in full, not
// wrapped to a negative charge that would slip past the byte bound.
func TestHugeContentLengthIsChargedInFull(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.ContentLength = math.MaxInt64
	assert.Equal(t, int64(math.MaxInt64), heldBytes(r))

	e := newEnv(t, 1, nil)
	first := e.get(t)
	e.waitHeld(t, 1)
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 9223372036854775807\r\n\r\n")
	require.NoError(t, err)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	body, _ := io.ReadAll(res.Body)
	assert.Contains(t, string(body), "hold queue full")
	assert.Equal(t, 1, e.load(t).Held)

	e.h.RemoveRevision(rev)
	assert.Equal(t, http.StatusServiceUnavailable, wait(t, first).code)
}

// A held POST whose client is still sending its body when the deadline
// passes gets its 503; the background read ends with the handler.
func TestRefusedWhileBodyArrives(t *testing.T) {
	e := newEnv(t, 1, nil)
	c, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = io.WriteString(c, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhello")
	require.NoError(t, err)
	e.waitHeld(t, 1)
	e.clk.Step(MinWait)
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusServiceUnavailable, res.StatusCode)
	body, _ := io.ReadAll(res.Body)
	assert.Contains(t, string(body), "wait deadline passed")
}
