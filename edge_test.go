package zeroscale_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// edgeServer is a Server on the fake backend whose instances read the
// whole request body and answer its length, serving on ln.
func edgeServer(t *testing.T, o zeroscale.Options, ln net.Listener) *zeroscale.Server {
	t.Helper()
	o.NewBackend = func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain, Handler: func(revision.Revision) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n, err := io.Copy(io.Discard, r.Body)
				if err != nil {
					return
				}
				fmt.Fprintf(w, "read %d\n", n)
			})
		}})
	}
	srv, err := zeroscale.New(o)
	require.NoError(t, err)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
		require.ErrorIs(t, <-served, http.ErrServerClosed)
	})
	return srv
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	return ln
}

// slowPost opens a connection and sends a POST to host declaring a body
// of size bytes, of which it sends only the first.
func slowPost(t *testing.T, addr, host string, size int) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n\r\nx", host, size)
	require.NoError(t, err)
	return c
}

// readAnswer reads one response from c and reports whether the server
// closed the connection after it.
func readAnswer(t *testing.T, c net.Conn, within time.Duration) (*http.Response, string, bool) {
	t.Helper()
	require.NoError(t, c.SetReadDeadline(time.Now().Add(within)))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	require.NoError(t, err, "an answer within %v", within)
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	_ = resp.Body.Close()
	_, err = br.ReadByte()
	return resp, string(body), err == io.EOF
}

func serviceWith(t *testing.T, srv *zeroscale.Server, name string, spec revision.Spec) {
	t.Helper()
	_, err := srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: name, Template: spec})
	require.NoError(t, err)
}

// A body that trickles in is answered 408 and its connection closed
// once it falls behind the rate rule, and the containerConcurrency-1
// slot it held is free again: a request waiting for it is served.
// Before, the trickle held the slot for the whole request timeout
// (300 s) and every other request got 503.
func TestSlowBodyIsAnswered408AndFreesItsSlot(t *testing.T) {
	ln := listen(t)
	srv := edgeServer(t, zeroscale.Options{BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1000}, ln)
	one := 1
	serviceWith(t, srv, "one", revision.Spec{Image: "x", ContainerConcurrency: 1,
		Scaling: revision.Scaling{MaxScale: &one}})
	host := "one.default.localhost"
	waitServing(t, ln.Addr().String(), host)

	slow := slowPost(t, ln.Addr().String(), host, 100000)
	// The slow request has the slot; then queue a request behind it.
	require.Eventually(t, func() bool {
		for _, st := range srv.Status() {
			for _, rs := range st.Revisions {
				if rs.InFlight == 1 {
					return true
				}
			}
		}
		return false
	}, 10*time.Second, time.Millisecond, "the slow request holds the slot")
	behind := make(chan int, 1)
	go func() {
		req, _ := http.NewRequest("POST", "http://"+ln.Addr().String()+"/", strings.NewReader("hello"))
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			behind <- 0
			return
		}
		_ = resp.Body.Close()
		behind <- resp.StatusCode
	}()

	resp, body, closed := readAnswer(t, slow, 10*time.Second)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, body)
	assert.Contains(t, body, "request body not received in time")
	assert.True(t, closed, "the connection is closed after the 408")
	select {
	case code := <-behind:
		assert.Equal(t, http.StatusOK, code, "the request waiting for the slot is served")
	case <-time.After(10 * time.Second):
		t.Fatal("the request waiting for the slot got no answer")
	}
}

// Even for an unknown host — net/http reads up to 256 KiB of an unread
// body before it writes the 404 — a trickling body cannot keep the
// connection: the answer comes and the connection is closed.
func TestSlowBodyForUnknownHostIsCut(t *testing.T) {
	ln := listen(t)
	edgeServer(t, zeroscale.Options{BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1000}, ln)
	slow := slowPost(t, ln.Addr().String(), "nope.default.localhost", 100000)
	resp, _, closed := readAnswer(t, slow, 10*time.Second)
	assert.Equal(t, http.StatusNotFound, resp.StatusCode)
	assert.True(t, closed, "the connection is closed after the answer")
}

// A body sent at a normal pace is not cut however long it takes beyond
// BodyTimeout, as long as it keeps the minimum rate.
func TestBodyAtTheMinimumRateIsServed(t *testing.T) {
	ln := listen(t)
	srv := edgeServer(t, zeroscale.Options{BodyTimeout: 200 * time.Millisecond, MinBodyRate: 10000}, ln)
	serviceWith(t, srv, "up", revision.Spec{Image: "x"})
	host := "up.default.localhost"
	waitServing(t, ln.Addr().String(), host)

	pr, pw := io.Pipe()
	go func() {
		chunk := make([]byte, 2000) // 20,000 B/s: twice the minimum
		for range 10 {
			if _, err := pw.Write(chunk); err != nil {
				return
			}
			time.Sleep(100 * time.Millisecond) // the pace of the upload
		}
		_ = pw.Close()
	}()
	req, err := http.NewRequest("POST", "http://"+ln.Addr().String()+"/", pr)
	require.NoError(t, err)
	req.Host = host
	req.ContentLength = 20000
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, string(b))
	assert.Equal(t, "read 20000\n", string(b))
}

// A malformed chunked body is the client's error: 400, and no internal
// address or instance in the answer.
func TestMalformedChunkedBodyIs400(t *testing.T) {
	ln := listen(t)
	srv := edgeServer(t, zeroscale.Options{}, ln)
	serviceWith(t, srv, "up", revision.Spec{Image: "x"})
	host := "up.default.localhost"
	waitServing(t, ln.Addr().String(), host)

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nzz\r\n", host)
	require.NoError(t, err)
	resp, body, closed := readAnswer(t, c, 10*time.Second)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	assert.NotContains(t, body, "127.0.0.1")
	assert.True(t, closed)
}

// Connections over Options.MaxConnsPerClient (from one address) or
// MaxConns (in all) are refused at accept with a 503; closing one frees
// its place.
func TestConnectionBounds(t *testing.T) {
	ln := listen(t)
	edgeServer(t, zeroscale.Options{MaxConns: 3, MaxConnsPerClient: 2}, ln)
	addr := ln.Addr().String()
	dialFrom := func(src string) net.Conn {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", addr)
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
		return c
	}
	served := func(c net.Conn) int {
		_, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: nope.default.localhost\r\n\r\n")
		require.NoError(t, err)
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		require.NoError(t, err)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	refused := func(c net.Conn) bool {
		require.NoError(t, c.SetReadDeadline(time.Now().Add(10*time.Second)))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return true // reset before the refusal was read: still refused
		}
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "too many connections")
	}

	a1, a2 := dialFrom("127.0.0.1"), dialFrom("127.0.0.1")
	assert.Equal(t, http.StatusNotFound, served(a1))
	assert.Equal(t, http.StatusNotFound, served(a2))
	assert.True(t, refused(dialFrom("127.0.0.1")), "a third connection from one client is refused")
	b1 := dialFrom("127.0.0.2")
	assert.Equal(t, http.StatusNotFound, served(b1), "another client still gets in")
	assert.True(t, refused(dialFrom("127.0.0.3")), "a fourth connection in all is refused")

	require.NoError(t, a1.Close())
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		conn, err := net.DialTCP("tcp", &net.TCPAddr{IP: net.ParseIP("127.0.0.3")}, ln.Addr().(*net.TCPAddr))
		if !assert.NoError(c, err) {
			return
		}
		defer conn.Close()
		_, err = fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: nope.default.localhost\r\n\r\n")
		assert.NoError(c, err)
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if assert.NoError(c, err) {
			assert.Equal(c, http.StatusNotFound, resp.StatusCode, "a closed connection frees its place")
		}
	}, 10*time.Second, 10*time.Millisecond)
}

// waitServing waits until host answers 200 through addr.
func waitServing(t *testing.T, addr, host string) {
	t.Helper()
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if !assert.NoError(c, err) {
			return
		}
		_ = resp.Body.Close()
		assert.Equal(c, http.StatusOK, resp.StatusCode)
	}, 20*time.Second, 10*time.Millisecond)
}

func TestEdgeOptionsValidated(t *testing.T) {
	for _, o := range []zeroscale.Options{{MaxConns: -1}, {MaxConnsPerClient: -1}, {BodyTimeout: -time.Second}, {MinBodyRate: -1}} {
		_, err := zeroscale.New(o)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Options.")
	}
}

// A bad Namespace or Domain fails New, naming the field, instead of
// every later Apply.
func TestNamespaceAndDomainValidatedByNew(t *testing.T) {
	for _, o := range []zeroscale.Options{{Namespace: "Bad_NS"}, {Domain: "exa mple.com"}, {Domain: "-bad.example"}} {
		_, err := zeroscale.New(o)
		require.Error(t, err, "%+v", o)
		assert.Contains(t, err.Error(), "Options.")
	}
	srv, err := zeroscale.New(zeroscale.Options{Namespace: "prod", Domain: "apps.example.com"})
	require.NoError(t, err)
	require.NoError(t, srv.Shutdown(context.Background()))
}

// A request with both Content-Length and Transfer-Encoding (a smuggling
// attempt) is served by its chunked body and its connection closed after
// the response (RFC 9112 §6.1). Before, the connection stayed open.
func TestContentLengthWithTransferEncodingClosesTheConnection(t *testing.T) {
	ln := listen(t)
	srv := edgeServer(t, zeroscale.Options{}, ln)
	serviceWith(t, srv, "up", revision.Spec{Image: "x"})
	host := "up.default.localhost"
	waitServing(t, ln.Addr().String(), host)

	c, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: %s\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", host)
	require.NoError(t, err)
	resp, body, closed := readAnswer(t, c, 10*time.Second)
	assert.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "read 5\n", body, "the body is the chunked one")
	assert.True(t, closed, "the connection is closed after the response")
}

// HTTP/2 (h2c) streams are under the same body rule: a stream whose body
// trickles is answered 408.
func TestSlowBodyOverHTTP2Is408(t *testing.T) {
	ln := listen(t)
	srv := edgeServer(t, zeroscale.Options{BodyTimeout: 300 * time.Millisecond, MinBodyRate: 1000}, ln)
	serviceWith(t, srv, "up", revision.Spec{Image: "x"})
	host := "up.default.localhost"
	waitServing(t, ln.Addr().String(), host)

	tr := &http.Transport{Protocols: new(http.Protocols)}
	tr.Protocols.SetUnencryptedHTTP2(true)
	defer tr.CloseIdleConnections()
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("x")) }() // then nothing more
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+ln.Addr().String()+"/", pr)
	require.NoError(t, err)
	req.Host = host
	req.ContentLength = 100000
	resp, err := (&http.Client{Transport: tr}).Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	assert.Equal(t, "HTTP/2.0", resp.Proto)
	assert.Equal(t, http.StatusRequestTimeout, resp.StatusCode, string(body))
}
