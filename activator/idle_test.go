package activator

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// waitIdle calls WaitInstanceIdle in the background.
func (e *env) waitIdle(ctx context.Context, id string) <-chan error {
	ch := make(chan error, 1)
	go func() { ch <- e.h.WaitInstanceIdle(ctx, rev, id) }()
	return ch
}

// mustBlock waits until the WaitInstanceIdle call behind done is parked
// on instance id, failing if it returned instead.
func (e *env) mustBlock(t testing.TB, id string, done <-chan error) {
	t.Helper()
	th := e.h.lookup(rev)
	require.Eventually(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("WaitInstanceIdle(%s) returned %v while the activator was still busy with it", id, err)
		default:
		}
		th.mu.Lock()
		defer th.mu.Unlock()
		return th.idle[id] != nil && th.idle[id].waiters > 0
	}, 10*time.Second, time.Millisecond,

		"WaitInstanceIdle not waiting on ", id)
}

func mustReturn(t testing.TB, done <-chan error, want error) {
	t.Helper()
	select {
	case err := <-done:
		if !errors.Is(err, want) || (want == nil) != (err == nil) {
			t.Fatalf("WaitInstanceIdle = %v, want %v", err, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("WaitInstanceIdle did not return within 10 s")
	}
}

func draining(in backend.Instance) backend.Instance {
	in.Draining = true
	return in
}

func TestWaitInstanceIdleWaitsForRequestsInFlight(t *testing.T) {
	e := newEnv(t, 0, nil)
	a, b := newUpstream(t, "a", true), newUpstream(t, "b", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	res := e.get(t)
	require.Eventually(t, func() bool { return a.inFlight.Load() == 1 }, 10*time.Second, time.Millisecond)

	done := e.waitIdle(t.Context(), "a")
	e.mustBlock(t, "a", done)
	require. // still a candidate, and busy
			NoError(t, e.h.UpdateInstances(rev, []backend.Instance{draining(a.instance(true)), b.instance(true)}))
	e.mustBlock(t, "a", done) // no longer a candidate, still busy

	// After the draining snapshot, new requests go elsewhere.
	for range 5 {
		assert.Equal(t, "ok b ", wait(t, e.get(t)).body)
	}
	a.release()
	assert.Equal(t, "ok a ", wait(t, res).body)
	mustReturn(t, done, nil)
	th := e.h.lookup(rev)
	th.mu.Lock()
	defer th.mu.Unlock()
	assert.Empty(t, len(th.idle))
	assert.Empty(t, len(th.orphans))
}

// A slot taken just before the draining snapshot is applied (the request
// has not reached the transport yet) is waited for: slots and snapshots
// share one lock, so no settle delay is needed.
func TestWaitInstanceIdleWaitsForSlotPickedBeforeSnapshot(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	th := e.h.lookup(rev)
	adm, err := th.acquire(t.Context(), acquireReq{})
	require.NoError(t, err)
	assert.Equal(t, "a", adm.slot.id)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{draining(a.instance(true))}))
	done := e.waitIdle(t.Context(), "a")
	e.mustBlock(t, "a", done)
	th.release(adm.slot)
	mustReturn(t, done, nil)
}

// The slot is released only once the response body was copied to the
// client to its end, not when the response headers arrived.
func TestWaitInstanceIdleWaitsForStreamedBody(t *testing.T) {
	e := newEnv(t, 0, nil)
	gate := make(chan struct{})
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "data: one\n")
		w.(http.Flusher).Flush()
		<-gate
		_, _ = io.WriteString(w, "data: two\n")
	}))
	t.Cleanup(up.Close)
	opened := false
	t.Cleanup(func() {
		if !opened {
			close(gate)
		}
	})
	inst := backend.Instance{ID: "s", Address: up.Listener.Addr().String(), Ready: true}
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))

	res, err := e.srv.Client().Get(e.srv.URL)
	require.NoError(t, err)
	defer res.Body.Close()
	br := bufio.NewReader(res.Body)
	line, err := br.ReadString('\n')
	require.NoError(t, err)
	assert.Equal(t, "data: one\n", line)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{draining(inst)}))
	done := e.waitIdle(t.Context(), "s")
	e.mustBlock(t, "s", done)
	close(gate)
	opened = true
	rest, err := io.ReadAll(br)
	require.NoError(t, err)
	assert.Equal(t, "data: two\n", string(rest))
	mustReturn(t, done, nil)
}

func TestWaitInstanceIdleWaitsForWebSocketClose(t *testing.T) {
	e := newEnv(t, 0, nil)
	up := newWebSocketUpstream(t)
	inst := backend.Instance{ID: "ws", Address: up.Listener.Addr().String(), Ready: true}
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{inst}))

	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.srv.URL, "http"), nil)
	require.NoError(t, err)
	defer c.CloseNow()
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{draining(inst)}))
	done := e.waitIdle(t.Context(), "ws")
	e.mustBlock(t, "ws", done)
	// The connection still works while the instance drains.
	require.NoError(t, c.Write(ctx, websocket.MessageText, []byte("hi")))
	_, msg, err := c.Read(ctx)
	require.NoError(t, err)
	assert.Equal(t, "echo hi", string(msg))
	e.mustBlock(t, "ws", done)
	require.NoError(t, c.Close(websocket.StatusNormalClosure, ""))
	mustReturn(t, done, nil)
}

func TestWaitInstanceIdleContextEnds(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	ctx, cancel := context.WithCancel(t.Context())
	done1, done2 := e.waitIdle(ctx, "a"), e.waitIdle(t.Context(), "a")
	e.mustBlock(t, "a", done1)
	require.Eventually(t, func() bool {
		th := e.h.lookup(rev)
		th.mu.Lock()
		defer th.mu.Unlock()
		return th.idle["a"].waiters == 2
	}, 10*time.Second, time.Millisecond,
	)
	cancel()
	mustReturn(t, done1, context.Canceled)
	// The other waiter still waits, and is woken by the snapshot.
	e.mustBlock(t, "a", done2)
	require.NoError(t, e.h.UpdateInstances(rev, nil))
	mustReturn(t, done2, nil)

	// The last waiter to give up removes the entry: the map stays bounded.
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	ctx, cancel = context.WithCancel(t.Context())
	done := e.waitIdle(ctx, "a")
	e.mustBlock(t, "a", done)
	cancel()
	mustReturn(t, done, context.Canceled)
	th := e.h.lookup(rev)
	th.mu.Lock()
	defer th.mu.Unlock()
	assert.Empty(t, len(th.idle))
}

func TestWaitInstanceIdleReturnsAtOnce(t *testing.T) {
	e := newEnv(t, 0, nil)
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(false), newUpstream(t, "b", false).instance(true)}))
	ctx, cancel := context.WithCancel(t.Context())
	cancel() // nothing to wait for: nil, not the context's error
	for _, c := range []struct{ rev, id string }{
		{"unknown-00001", "a"}, // unknown revision
		{rev, "never-seen"},    // unknown instance
		{rev, "a"},             // not ready, no slot
	} {
		require.NoError(t, e.h.WaitInstanceIdle(ctx, c.rev, c.id))
	}

	// Removing the revision ends new picks; requests in flight are still
	// waited for.
	done := e.waitIdle(t.Context(), "b")
	e.mustBlock(t, "b", done)
	th := e.h.lookup(rev)
	adm, err := th.acquire(t.Context(), acquireReq{})
	require.NoError(t, err)
	e.h.RemoveRevision(rev)
	require.NoError(t, e.h.WaitInstanceIdle(ctx, rev, "b")) // now unknown
	select {
	case err := <-done:
		t.Fatalf("WaitInstanceIdle returned %v with a slot still held", err)
	default:
	}
	th.release(adm.slot)
	mustReturn(t, done, nil)
}

// Requests reach the instance in the revision's protocol, whatever the
// client speaks: an h2c revision over h2c (gRPC, trailers included),
// any other over HTTP/1.1, so an HTTP/2 client of an HTTP/1 app is
// served.
func TestDefaultTransportSpeaksTheRevisionsProtocol(t *testing.T) {
	e := newEnv(t, 0, nil)
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "Grpc-Status")
		_, _ = fmt.Fprintf(w, "%s", r.Proto)
		w.Header().Set("Grpc-Status", "0")
	}))
	up.Config.Protocols = new(http.Protocols)
	up.Config.Protocols.SetHTTP1(true)
	up.Config.Protocols.SetUnencryptedHTTP2(true)
	up.Start()
	t.Cleanup(up.Close)

	front := httptest.NewUnstartedServer(e.h)
	front.Config.Protocols = new(http.Protocols)
	front.Config.Protocols.SetHTTP1(true)
	front.Config.Protocols.SetUnencryptedHTTP2(true)
	front.Start()
	t.Cleanup(front.Close)

	h2 := &http.Transport{Protocols: new(http.Protocols)}
	h2.Protocols.SetUnencryptedHTTP2(true)
	t.Cleanup(h2.CloseIdleConnections)
	for _, p := range []struct{ protocol, want string }{
		{"", "HTTP/1.1"}, {revision.ProtocolHTTP1, "HTTP/1.1"}, {revision.ProtocolH2C, "HTTP/2.0"},
	} {
		e.h.RemoveRevision(rev)
		spec := revision.Spec{Command: []string{"app"}, Protocol: p.protocol}
		r, err := revision.New("hello", rev, 1, spec, time.Time{})
		require.NoError(t, err)
		require.NoError(t, e.h.SetRevision(r))
		require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{{ID: "u", Address: up.Listener.Addr().String(), Ready: true}}))
		for _, client := range []http.RoundTripper{h2, front.Client().Transport} {
			res, err := (&http.Client{Transport: client}).Get(front.URL)
			require.NoError(t, err)
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.NoError(t, res.Body.Close())
			assert.Equal(t, p.want, string(body))
			if res.ProtoMajor == 2 || p.protocol != revision.ProtocolH2C {
				// An h2c app's trailers do not reach an HTTP/1.1 client
				// (they are not announced before the body); gRPC
				// clients speak HTTP/2.
				assert.Equal(t, "0", res.Trailer.Get("Grpc-Status"), p.protocol, " ", res.Proto)
			}
		}
	}
}
