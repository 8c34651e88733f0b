package docker_test

import (
	"io"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/docker"
)

// engineProxy forwards a unix socket to the engine and can cut every
// connection, and refuse new ones, on demand: an engine restart or a
// network blip as the backend's event stream sees it.
type engineProxy struct {
	t    *testing.T
	ln   net.Listener
	dial func() (net.Conn, error)

	mu    sync.Mutex
	down  bool
	conns map[net.Conn]struct{}
}

func newEngineProxy(t *testing.T) *engineProxy {
	u, err := client.ParseHostURL(cli.DaemonHost())
	require.NoError(t, err)
	network, addr := u.Scheme, u.Host // for unix, Host is the socket's path
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "engine.sock"))
	require.NoError(t, err)
	p := &engineProxy{t: t, ln: ln, conns: map[net.Conn]struct{}{},
		dial: func() (net.Conn, error) { return net.Dial(network, addr) }}
	go p.serve()
	t.Cleanup(func() {
		ln.Close()
		p.cut(false)
	})
	return p
}

func (p *engineProxy) host() string { return "unix://" + p.ln.Addr().String() }

func (p *engineProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		down := p.down
		if !down {
			p.conns[c] = struct{}{}
		}
		p.mu.Unlock()
		if down {
			c.Close()
			continue
		}
		go p.forward(c)
	}
}

func (p *engineProxy) forward(c net.Conn) {
	e, err := p.dial()
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	p.conns[e] = struct{}{}
	p.mu.Unlock()
	go func() {
		_, _ = io.Copy(e, c)
		e.Close()
	}()
	_, _ = io.Copy(c, e)
	c.Close()
}

// cut closes every open connection; with down set, new ones are closed
// at once until cut(false).
func (p *engineProxy) cut(down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down = down
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
}

// TestEventStreamReconnect kills a container while the backend's event
// stream is cut: after the reconnect, the re-list finds the dead
// container, and a new instance replaces it.
func TestEventStreamReconnect(t *testing.T) {
	needEngine(t)
	p := newEngineProxy(t)
	c, err := client.New(client.WithHost(p.host()))
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	b := newBackend(t, docker.Options{Client: c, Proxy: docker.QueueProxy(testQueueProxy)})
	rev := newRevision(t, "blip-00001", appSpec())
	ctx := t.Context()
	ch, ready := up(t, b, rev, 1)
	first := ready[0]
	cid := containerOf(t, first.ID)

	p.cut(true)
	_, err = cli.ContainerKill(ctx, cid, client.ContainerKillOptions{Signal: "KILL"})
	require.NoError(t, err)
	p.cut(false)

	second := waitReady(t, ch, 1)[0]
	assert.NotEqual(t, first.ID, second.ID)
	st, err := b.Status(ctx, rev.Name())
	require.NoError(t, err)
	require.Len(t, st.Instances, 1)
	require.NotNil(t, st.Instances[0].LastExit)
	assert.Equal(t, 137, st.Instances[0].LastExit.Code, "SIGKILL")
}
