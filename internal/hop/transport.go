package hop

import (
	"net"
	"net/http"
	"net/http/httputil"
	"sync"
	"time"
)

// DialTimeout bounds connecting to the upstream in NewTransport.
const DialTimeout = 5 * time.Second

// NewTransport returns a transport for proxying to app instances, shared
// by the queue-proxy and the activator. It keeps a request's HTTP major
// version on the next hop: HTTP/2 requests (gRPC needs HTTP/2 end to
// end) go over h2c (HTTP/2 without TLS, prior knowledge), the rest,
// upgrades (WebSocket) included, over HTTP/1.1 with keep-alive. Each
// host keeps at most maxIdlePerHost idle connections (a concurrency
// limit is the natural size: an instance can use no more); the number
// of hosts is not limited. Connecting is bounded by DialTimeout, and
// compression is left to the client and the app.
//
// The transport has a CloseIdleConnections method, as *http.Transport.
func NewTransport(maxIdlePerHost int) http.RoundTripper {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	base := func() *http.Transport {
		return &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConnsPerHost:   maxIdlePerHost,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
			// Pass the client's encodings through untouched.
			DisableCompression: true,
		}
	}
	h2c := base()
	h2c.Protocols = new(http.Protocols)
	h2c.Protocols.SetUnencryptedHTTP2(true)
	return splitTransport{h1: base(), h2c: h2c}
}

type splitTransport struct{ h1, h2c *http.Transport }

func (t splitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ProtoMajor == 2 {
		return t.h2c.RoundTrip(r)
	}
	return t.h1.RoundTrip(r)
}

// CloseIdleConnections closes both transports' idle connections.
func (t splitTransport) CloseIdleConnections() {
	t.h1.CloseIdleConnections()
	t.h2c.CloseIdleConnections()
}

// NewBufferPool returns a pool of the 32 KiB buffers that
// httputil.ReverseProxy copies response bodies through, so that a
// proxied request allocates none. Safe for concurrent use.
func NewBufferPool() httputil.BufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { return new([copyBufferSize]byte) }}}
}

// bufferPool pools array pointers, which keeps Put allocation-free (a
// *[]byte would cost an allocation per Put).
type bufferPool struct{ p sync.Pool }

const copyBufferSize = 32 << 10

func (b *bufferPool) Get() []byte { return b.p.Get().(*[copyBufferSize]byte)[:] }

// Put takes back only the pool's own buffers.
func (b *bufferPool) Put(s []byte) {
	if len(s) == copyBufferSize {
		b.p.Put((*[copyBufferSize]byte)(s))
	}
}
