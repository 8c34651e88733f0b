package queueproxy

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/internal/hop"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// rig is a proxy under test: a real loopback upstream, the Proxy on a
// fake clock, and a real loopback front server (HTTP/1.1 and h2c).
type rig struct {
	t        *testing.T
	clock    *clocktesting.FakeClock
	upstream *httptest.Server
	proxy    *Proxy
	front    *httptest.Server
	client   *http.Client
}

func newRig(t *testing.T, app http.Handler, mod func(*Options)) *rig {
	t.Helper()
	r := &rig{t: t, clock: clocktesting.NewFakeClock(epoch)}
	r.upstream = httptest.NewUnstartedServer(app)
	r.upstream.Config.Protocols = h1h2c()
	r.upstream.Start()
	t.Cleanup(r.upstream.Close)
	opts := Options{
		Upstream: r.upstream.Listener.Addr().String(),
		Revision: "hello-00001",
		Instance: "hello-00001-a",
		Clock:    r.clock,
	}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	r.proxy = p
	r.front = httptest.NewUnstartedServer(p)
	r.front.Config = hop.NewServer("", p)
	r.front.Start()
	t.Cleanup(r.front.Close)
	r.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	t.Cleanup(r.client.CloseIdleConnections)
	return r
}

func h1h2c() *http.Protocols {
	var p http.Protocols
	p.SetHTTP1(true)
	p.SetUnencryptedHTTP2(true)
	return &p
}

func (r *rig) url(path string) string { return r.front.URL + path }

// do sends req and returns status and body; a transport error fails
// the test (with Errorf: do runs on other goroutines too) and returns 0.
func (r *rig) do(req *http.Request) (int, string, http.Header) {
	r.t.Helper()
	res, err := r.client.Do(req)
	if err != nil {
		r.t.Errorf("%s %s: %v", req.Method, req.URL.Path, err)
		return 0, "", nil
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		r.t.Errorf("reading body: %v", err)
	}
	return res.StatusCode, string(b), res.Header
}

func (r *rig) get(path string, header ...string) (int, string, http.Header) {
	r.t.Helper()
	req, err := http.NewRequest(http.MethodGet, r.url(path), nil)
	if err != nil {
		r.t.Error(err)
		return 0, "", nil
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return r.do(req)
}

// gate is an app handler that blocks each request until released.
type gate struct {
	arrived chan *http.Request
	release chan struct{}
}

func newGate() *gate {
	return &gate{arrived: make(chan *http.Request, 100), release: make(chan struct{})}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.arrived <- r
	select {
	case <-g.release:
	case <-r.Context().Done():
		return
	}
	_, _ = io.WriteString(w, "done")
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

func trimmed(s string) string { return strings.TrimSpace(s) }

// waitTimeout bounds the waits for the tests' goroutines to reach a
// state (no clock involved: the clocks are fake).
const waitTimeout = 10 * time.Second
