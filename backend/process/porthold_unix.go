//go:build unix

package process

import (
	"fmt"
	"os"
	"sync"
	"syscall"
)

// portHold keeps a loopback TCP port for an app that has not bound it
// yet: a socket bound to 127.0.0.1:port with SO_REUSEADDR that never
// listens. While it exists the kernel hands the port to no one else (no
// bind to port 0 and no outgoing connection gets it), so no other
// listener can answer the instance's readiness probe in the app's place,
// and a connect to the port is refused until the app listens. The app
// itself can still bind and listen on the port: two SO_REUSEADDR sockets
// conflict only when one of them listens, and every common server
// runtime (Go, Node.js, Python's http.server, the JVM, Rust's std,
// nginx) sets SO_REUSEADDR on Unix.
type portHold struct {
	once sync.Once
	fd   int
	port int
}

// holdPort binds a hold on 127.0.0.1:port; port 0 lets the kernel pick a
// free one. It fails with EADDRINUSE when a socket listens on the port.
func holdPort(port int) (*portHold, error) {
	// As net does: no child may inherit the descriptor, so it is
	// close-on-exec before any fork can happen.
	syscall.ForkLock.RLock()
	fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, syscall.IPPROTO_TCP)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("socket: %w", err)
	}
	if err := syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("SO_REUSEADDR: %w", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}); err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("bind 127.0.0.1:%d: %w", port, err)
	}
	sa, err := syscall.Getsockname(fd)
	if err != nil {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("getsockname: %w", err)
	}
	in4, ok := sa.(*syscall.SockaddrInet4)
	if !ok {
		_ = syscall.Close(fd)
		return nil, fmt.Errorf("getsockname: unexpected address %T", sa)
	}
	return &portHold{fd: fd, port: in4.Port}, nil
}

// release gives the port up; safe to call more than once and on nil.
func (h *portHold) release() {
	if h == nil {
		return
	}
	h.once.Do(func() { _ = syscall.Close(h.fd) })
}

// listenFile makes the held socket listen (socket activation: the
// kernel queues connections to the app's port from now on) and returns
// a duplicate of it for the app's descriptor 3. The hold keeps its own
// copy until it is released; the app's copy keeps the queue after that.
func (h *portHold) listenFile() (*os.File, error) {
	if err := syscall.Listen(h.fd, syscall.SOMAXCONN); err != nil {
		return nil, fmt.Errorf("listen on 127.0.0.1:%d: %w", h.port, err)
	}
	syscall.ForkLock.RLock()
	fd, err := syscall.Dup(h.fd)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("dup: %w", err)
	}
	return os.NewFile(uintptr(fd), "listener"), nil
}
