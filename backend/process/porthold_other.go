//go:build !unix

package process

import (
	"errors"
	"net"
	"os"
	"strconv"
)

// portHold is, without Unix socket semantics, only a port number that
// was free a moment ago: another listener may take it before the app
// binds it (the instance then fails and shows a crash loop in Status).
type portHold struct{ port int }

func holdPort(port int) (*portHold, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return nil, err
	}
	h := &portHold{port: ln.Addr().(*net.TCPAddr).Port}
	return h, ln.Close()
}

func (h *portHold) release() {}

func (h *portHold) listenFile() (*os.File, error) {
	return nil, errors.New("socket activation needs Unix sockets")
}
