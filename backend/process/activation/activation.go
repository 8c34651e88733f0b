package activation

import (
	"fmt"
	"net"
	"os"
	"strconv"
)

// FirstFD is the first inherited descriptor, SD_LISTEN_FDS_START.
const FirstFD = 3

// Listen returns the listener the app was started with (LISTEN_FDS ≥ 1
// and LISTEN_PID naming this process: descriptor FirstFD), or else
// net.Listen("tcp", addr). It unsets LISTEN_FDS, LISTEN_PID and
// LISTEN_FDNAMES, as sd_listen_fds(1) does, so that child processes do
// not take the socket for theirs. Call it once.
func Listen(addr string) (net.Listener, error) {
	n, err := inherited()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return net.Listen("tcp", addr)
	}
	f := os.NewFile(FirstFD, "LISTEN_FD_3")
	ln, err := net.FileListener(f)
	_ = f.Close() // FileListener made its own descriptor
	if err != nil {
		return nil, fmt.Errorf("activation: descriptor %d: %w", FirstFD, err)
	}
	return ln, nil
}

// inherited reports how many descriptors the environment says this
// process was given (0 when LISTEN_PID names another process or is
// unset), and unsets the variables.
func inherited() (int, error) {
	fds, pid := os.Getenv("LISTEN_FDS"), os.Getenv("LISTEN_PID")
	_ = os.Unsetenv("LISTEN_FDS")
	_ = os.Unsetenv("LISTEN_PID")
	_ = os.Unsetenv("LISTEN_FDNAMES")
	if fds == "" || pid != strconv.Itoa(os.Getpid()) {
		return 0, nil
	}
	n, err := strconv.Atoi(fds)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("activation: LISTEN_FDS=%q: want a count of descriptors", fds)
	}
	return n, nil
}
