//go:build unix

package process

import (
	"errors"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// The kernel hands out ports at random and reuses them once closed, so
// 1000 unreserved picks would repeat some; reserved ones never do.
func TestReservePortDistinct(t *testing.T) {
	b := &Backend{ports: make(map[int]struct{})}
	for i := range 1000 {
		before := len(b.ports)
		h, err := b.reservePort()
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		t.Cleanup(h.release)
		if len(b.ports) != before+1 {
			t.Fatalf("pick %d: port %d handed out twice", i, h.port)
		}
	}
}

// While a port is held, no listener bound to port 0 gets it (the way
// the instance's own proxy, the activator's tests or any other server
// pick ports), yet the app can still listen on it, and nothing else can
// while the app does.
func TestPortHold(t *testing.T) {
	h, err := holdPort(0)
	if err != nil {
		t.Fatal(err)
	}
	defer h.release()
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(h.port))

	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatal("a held port with no app accepted a connection")
	}
	for i := range 2000 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		got := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if got == h.port {
			t.Fatalf("listen %d on port 0 got the held port %d", i, got)
		}
	}

	app, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the app cannot listen on its held port: %v", err)
	}
	defer app.Close()
	if _, err := holdPort(h.port); !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("holding a port another socket listens on: err = %v, want EADDRINUSE", err)
	}
	h.release()
	h.release() // idempotent
	if c, err := net.Dial("tcp", addr); err != nil {
		t.Fatalf("releasing the hold closed the app's listener: %v", err)
	} else {
		c.Close()
	}
}
