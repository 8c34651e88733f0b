//go:build linux

package zeroscale_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/revision"
)

// The flood: floodConns connections from floodClients loopback
// addresses (127.0.1.x), opened by floodAttackers processes of their own
// (one process may hold too few descriptors for both ends).
const (
	floodConns     = 20000
	floodClients   = 25
	floodAttackers = 2
	floodEnv       = "ZEROSCALE_TEST_FLOOD_ATTACK" // "ADDR COUNT" for TestFloodAttacker
)

// TestSlowBodyFlood sends floodConns connections that each declare a
// 100,000-byte body and then send one byte a second, and checks that
// while they are held a warm service still answers every request, on
// new connections and kept-alive ones, and a cold one starts. It logs
// the figures the reliability note reports: connections held and
// refused, this process's open descriptors, the warm service's p50/p99
// and the cold start. Before the edge bounds, such a flood took the
// process to its descriptor limit and every service was unreachable.
func TestSlowBodyFlood(t *testing.T) {
	ln := listen(t)
	// A long BodyTimeout keeps the flood held for the measurement; the
	// rule that cuts it is TestSlowBodyIsAnswered408AndFreesItsSlot's.
	cfg := revision.DefaultConfig()
	cfg.AllowZeroInitialScale = true
	srv := edgeServer(t, zeroscale.Options{BodyTimeout: 10 * time.Minute, Config: cfg}, ln)
	one := 1
	serviceWith(t, srv, "warm", revision.Spec{Image: "x", Scaling: revision.Scaling{MinScale: &one}})
	zero := 0
	serviceWith(t, srv, "cold", revision.Spec{Image: "x", Scaling: revision.Scaling{InitialScale: &zero}})
	addr := ln.Addr().String()
	waitServing(t, addr, "warm.default.localhost")
	base := openFDs(t)

	exe, err := os.Executable()
	require.NoError(t, err)
	type tally struct{ held, refused int }
	tallies := make(chan tally, floodAttackers)
	for range floodAttackers {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, exe, "-test.run=^TestFloodAttacker$")
		cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d", floodEnv, addr, floodConns/floodAttackers))
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		cmd.Stderr = os.Stderr
		require.NoError(t, cmd.Start())
		t.Cleanup(func() { cancel(); _ = cmd.Wait() })
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
		case <-time.After(2 * time.Minute):
			t.Fatal("the attackers did not report within 2 minutes")
		}
	}
	require.Equal(t, floodConns, total.held+total.refused)
	require.Positive(t, total.held)
	held := openFDs(t)

	var lat []time.Duration
	fresh := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	kept := &http.Client{Transport: &http.Transport{}}
	for i := range 400 {
		c := kept
		if i%2 == 0 {
			c = fresh
		}
		t0 := time.Now()
		code := getHost(t, c, addr, "warm.default.localhost")
		lat = append(lat, time.Since(t0))
		require.Equal(t, http.StatusOK, code, "warm request %d during the flood", i)
	}
	slices.Sort(lat)
	t0 := time.Now()
	require.Equal(t, http.StatusOK, getHost(t, fresh, addr, "cold.default.localhost"), "a cold service starts during the flood")
	cold := time.Since(t0)

	t.Logf("flood: %d slow-body connections from %d addresses: %d held by the Server, %d refused at accept; "+
		"Server process open fds %d (%d before); warm service over %d requests (half on new connections): "+
		"p50 %v p99 %v max %v; cold start %v; RSS %s",
		floodConns, floodClients, total.held, total.refused, held, base, len(lat),
		lat[len(lat)/2].Round(10*time.Microsecond), lat[len(lat)*99/100].Round(10*time.Microsecond),
		lat[len(lat)-1].Round(10*time.Microsecond), cold.Round(10*time.Microsecond), rss(t))
}

// TestFloodAttacker is TestSlowBodyFlood's attacker process: it does
// nothing unless floodEnv is set. It opens COUNT connections to ADDR
// from floodClients source addresses, each a POST for an unknown host
// declaring a 100,000-byte body and sending one byte; after a second it
// reports how many the server held open and how many it refused, then
// sends one more byte a second on each until it is killed.
func TestFloodAttacker(t *testing.T) {
	spec := os.Getenv(floodEnv)
	if spec == "" {
		t.Skip("runs only as TestSlowBodyFlood's attacker")
	}
	var addr string
	var n int
	_, err := fmt.Sscanf(spec, "%s %d", &addr, &n)
	require.NoError(t, err)
	raddr, err := net.ResolveTCPAddr("tcp", addr)
	require.NoError(t, err)
	conns := make([]*net.TCPConn, 0, n)
	for i := range n {
		src := &net.TCPAddr{IP: net.IPv4(127, 0, 1, byte(1+i%floodClients))}
		c, err := net.DialTCP("tcp", src, raddr)
		require.NoError(t, err, "connection %d", i)
		_, err = fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: nope.default.localhost\r\nContent-Length: 100000\r\n\r\nx")
		require.NoError(t, err)
		conns = append(conns, c)
	}
	time.Sleep(time.Second) // let the server refuse what it refuses
	held := 0
	buf := make([]byte, 1)
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		if _, err := c.Read(buf); errors.Is(err, os.ErrDeadlineExceeded) {
			held++ // nothing from the server: still waiting for the body
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

func getHost(t *testing.T, c *http.Client, addr, host string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+addr+"/", nil)
	require.NoError(t, err)
	req.Host = host
	resp, err := c.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	return resp.StatusCode
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
