package edge

import (
	"io"
	"net"
	"net/netip"
	"sync"
	"time"
)

// refusal is written to a connection refused for a limit before it is
// closed: a best effort (the write never blocks the accept loop), so a
// client sees why rather than a bare reset.
const refusal = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Connection: close\r\n" +
	"Retry-After: 1\r\n" +
	"Content-Length: 21\r\n\r\n" +
	"too many connections\n"

// LightClientConns is the most connections a client may hold and still
// be let into the part of Listener.Max kept for light clients.
const LightClientConns = 8

// lightReserve: 1/lightReserve of Listener.Max is kept for light clients.
const lightReserve = 8

// refusalWriteTimeout bounds the refusal's write, which runs in the
// accept loop: a fresh connection's send buffer is empty, so it normally
// returns at once.
const refusalWriteTimeout = time.Millisecond

// Listener wraps a net.Listener and bounds its open connections: at most
// Max in all and MaxPerClient per client address (an IPv4 address, or an
// IPv6 /64, which one host typically holds). The last eighth of Max is
// kept for light clients, which hold fewer than LightClientConns
// connections: a few heavy clients (a flood from a handful of addresses)
// fill the rest and are refused, while a browser or a kept-alive client
// still gets in. A connection over a bound is refused in Accept itself —
// a best-effort 503, then closed — so it costs no goroutine, no buffer
// and no request parsing. A connection counts until it is closed
// (hijacked ones included). Max or MaxPerClient ≤ 0 means no bound.
type Listener struct {
	net.Listener
	Max          int
	MaxPerClient int
	// OnRefuse, when set, is called (in Accept) for every refused
	// connection with the bound that refused it: "listener" or "client".
	OnRefuse func(bound string)

	mu      sync.Mutex
	open    int
	clients map[netip.Prefix]int
}

// Accept returns the next connection within the bounds, refusing the
// ones over them.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		key := clientKey(c.RemoteAddr())
		if bound := l.admit(key); bound != "" {
			refuse(c)
			if l.OnRefuse != nil {
				l.OnRefuse(bound)
			}
			continue
		}
		return &conn{Conn: c, l: l, key: key}, nil
	}
}

// Open returns the number of connections accepted and not yet closed.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// admit counts a new connection from key, or returns the bound it would
// break.
func (l *Listener) admit(key netip.Prefix) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.Max > 0 && l.open >= l.Max {
		return "listener"
	}
	if l.Max > 0 && l.open >= l.Max-l.Max/lightReserve && l.clients[key] >= LightClientConns {
		return "listener"
	}
	if l.MaxPerClient > 0 && key.IsValid() && l.clients[key] >= l.MaxPerClient {
		return "client"
	}
	l.open++
	if key.IsValid() {
		if l.clients == nil {
			l.clients = make(map[netip.Prefix]int)
		}
		l.clients[key]++
	}
	return ""
}

func (l *Listener) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key.IsValid() {
		if n := l.clients[key] - 1; n > 0 {
			l.clients[key] = n
		} else {
			delete(l.clients, key)
		}
	}
}

// clientKey is the address a per-client bound counts: the IPv4 address,
// or the /64 of an IPv6 one. Not an IP connection (a Unix socket): the
// zero Prefix, which no per-client bound applies to.
func clientKey(a net.Addr) netip.Prefix {
	ta, ok := a.(*net.TCPAddr)
	if !ok {
		return netip.Prefix{}
	}
	ip, ok := netip.AddrFromSlice(ta.IP)
	if !ok {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// refuse answers c with the refusal, without blocking, and closes it.
func refuse(c net.Conn) {
	_ = c.SetWriteDeadline(time.Now().Add(refusalWriteTimeout))
	_, _ = c.Write([]byte(refusal))
	if tc, ok := c.(*net.TCPConn); ok {
		// Stop sending; with the client's request unread, a plain Close
		// may reset the connection before it reads the refusal.
		_ = tc.CloseWrite()
	}
	_ = c.Close()
}

// conn releases its place in the Listener's bounds once closed.
type conn struct {
	net.Conn
	l    *Listener
	key  netip.Prefix
	once sync.Once
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() { c.l.release(c.key) })
	return err
}

// ReadFrom keeps the TCP connection's sendfile/splice path, which
// net/http uses for files and large copies.
func (c *conn) ReadFrom(r io.Reader) (int64, error) {
	if rf, ok := c.Conn.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(struct{ io.Writer }{c.Conn}, r)
}

// Bounds of DefaultMaxConns.
const (
	minDefaultMaxConns = 256
	// fallbackMaxConns is DefaultMaxConns where the open-file limit is
	// unknown.
	fallbackMaxConns = 10000
)

// DefaultMaxConns is a listener's connection bound that keeps a process
// able to work at it: a quarter of its open-file limit (RLIMIT_NOFILE,
// which Go raises to the hard limit at start-up), since a request proxied
// to an in-process queue-proxy costs up to four descriptors (the client's
// connection, activator → queue-proxy and its accepted end, queue-proxy →
// app), and instances need pipes and files; at least 256.
func DefaultMaxConns() int {
	n := openFileLimit()
	if n == 0 {
		return fallbackMaxConns
	}
	return int(max(min(n/4, 1<<30), minDefaultMaxConns))
}
