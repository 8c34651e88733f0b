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
// by the queue-proxy and the activator. The app's protocol decides the
// next hop, never the client's (Knative's rule: the revision declares it
// with its port name): h2c (HTTP/2 without TLS, prior knowledge) for an
// app that speaks it (gRPC needs HTTP/2 end to end), else HTTP/1.1 with
// keep-alive, upgrades (WebSocket) included, so an HTTP/2 client of an
// HTTP/1 app is served. Each host keeps at most maxIdlePerHost idle
// connections (a concurrency limit is the natural size: an instance can
// use no more); the number of hosts is not limited. Connecting is
// bounded by DialTimeout, and compression is left to the client and the
// app.
//
// The transport has a CloseIdleConnections method, as *http.Transport.
func NewTransport(maxIdlePerHost int, h2c bool) http.RoundTripper {
	dialer := &net.Dialer{Timeout: DialTimeout, KeepAlive: 30 * time.Second}
	t := &http.Transport{
		DialContext:           dialer.DialContext,
		MaxIdleConnsPerHost:   maxIdlePerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Pass the client's encodings through untouched.
		DisableCompression: true,
	}
	if h2c {
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	}
	return t
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
