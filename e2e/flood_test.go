package e2e_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
)

// The flood: floodConns connections from floodClients loopback
// addresses (127.0.1.x), opened by floodAttackers processes of their own
// (one process may hold too few descriptors for both ends).
const (
	floodConns     = 20000
	floodClients   = 25
	floodAttackers = 2
	floodEnv       = "ZEROSCALE_E2E_FLOOD" // "ADDR COUNT": run as an attacker (see runFloodAttacker)
)

// TestSlowBodyFlood sends floodConns connections that each declare a
// 100,000-byte body and then send one byte a second, and checks that
// while they are open a warm service (a real process) still answers
// every request, on new connections and kept-alive ones, and a cold one
// starts (a real process, from zero). It logs the figures the
// reliability note reports: connections held and refused, this
// process's open descriptors, the warm service's p50/p99 and the cold
// start. Before the edge bounds, such a flood took the host to its
// descriptor limit and every service was unreachable.
func TestSlowBodyFlood(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("counts descriptors in /proc/self/fd (Linux)")
	}
	// A long BodyTimeout keeps the flood held for the measurement; the
	// rule that cuts it is tested by the root package.
	h := newHarnessWith(t, zeroConfig(), 2, func(o *zeroscale.Options) { o.BodyTimeout = 10 * time.Minute })
	warm := appSpec(t)
	one := 1
	warm.Scaling.MinScale = &one
	h.apply(zeroscale.ServiceSpec{Name: "warm", Template: warm})
	h.apply(zeroscale.ServiceSpec{Name: "cold", Template: appSpec(t)})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if r := h.get(ctx, "warm", "/"); !r.ok() {
		t.Fatalf("warm service before the flood: %v", r)
	}
	base := openFDs(t)

	exe, err := os.Executable()
	require.NoError(t, err)
	type tally struct{ held, refused int }
	tallies := make(chan tally, floodAttackers)
	for range floodAttackers {
		cmd := exec.CommandContext(ctx, exe, "-test.run=^$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", floodEnv, h.addr, floodConns/floodAttackers))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				var tl tally
				if _, err := fmt.Sscanf(sc.Text(), "flood held %d refused %d", &tl.held, &tl.refused); err == nil {
					tallies <- tl
				}
			}
		}()
	}
	var total tally
	for range floodAttackers {
		select {
		case tl := <-tallies:
			total.held += tl.held
			total.refused += tl.refused
		case <-ctx.Done():
			t.Fatal("the attackers did not report")
		}
	}
	require.Equal(t, floodConns, total.held+total.refused)
	require.Positive(t, total.held)
	held := openFDs(t)

	var lat []time.Duration
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for i := range 400 {
		c := h.client
		if i%2 == 0 {
			c = fresh
		}
		t0 := time.Now()
		code, err := getWith(ctx, c, h.addr, "warm.default.localhost")
		lat = append(lat, time.Since(t0))
		require.NoError(t, err, "warm request %d during the flood", i)
		require.Equal(t, http.StatusOK, code, "warm request %d during the flood", i)
	}
	slices.Sort(lat)
	t0 := time.Now()
	code, err := getWith(ctx, fresh, h.addr, "cold.default.localhost")
	cold := time.Since(t0)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, "a cold service starts during the flood")

	t.Logf("E2E flood: %d slow-body connections from %d addresses: %d held by the Server, %d refused at accept; "+
		"host process open fds %d (%d before); warm service (process) over %d requests (half on new connections): "+
		"p50 %v p99 %v max %v; cold start from zero (process) %v; host RSS %s",
		floodConns, floodClients, total.held, total.refused, held, base, len(lat),
		lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond),
		lat[len(lat)-1].Round(10*time.Microsecond), cold.Round(10*time.Microsecond), rss(t))
}

func getWith(ctx context.Context, c *http.Client, addr, host string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	if err != nil {
		return 0, err
	}
	req.Host = host
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_ = resp.Body.Close()
	return resp.StatusCode, nil
}

// runFloodAttacker is TestSlowBodyFlood's attacker process (floodEnv is
// "ADDR COUNT"): it opens COUNT connections to ADDR from floodClients
// source addresses, each a POST for an unknown host declaring a
// 100,000-byte body and sending one byte; after a second it reports how
// many the server held open and how many it refused, then sends one
// more byte a second on each until it is killed.
func runFloodAttacker(spec string) int {
	var addr string
	var n int
	if _, err := fmt.Sscanf(spec, "%s %d", &addr, &n); err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		return 1
	}
	raddr, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flood:", err)
		return 1
	}
	conns := make([]*net.TCPConn, 0, n)
	for i := range n {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%floodClients))}
		c, err := net.DialTCP("tcp", src, raddr)
		if err != nil {
			fmt.Fprintf(os.Stderr, "flood: connection %d: %v\n", i, err)
			return 1
		}
		_, _ = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: nope.default.localhost\r\nContent-Length: 100000\r\n\r\nx")
		conns = append(conns, c)
	}
	time.Sleep(time.Second) // let the server refuse what it refuses
	held := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(buf); errors.Is(err, os.ErrDeadlineExceeded) {
			held++ // nothing from the server: it waits for the body
		}
	}
	fmt.Printf("flood held %d refused %d\n", held, n-held)
	for {
		time.Sleep(time.Second) // one byte a second
		for _, c := range conns {
			_ = c.SetWriteDeadline(time.Now().Add(time.Millisecond))
			_, _ = c.Write([]byte("x"))
		}
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

func rss(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	require.NoError(t, err)
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}
