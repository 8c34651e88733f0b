package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mainEnv makes the test binary run main with the arguments after "--".
const mainEnv = "ZEROSCALE_QUICKSTART_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{os.Args[0]}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The quickstart binds its ports before it prints where to go: with the
// port taken it fails with the reason and prints no URL. Before, it
// printed the URL and the curl lines, then failed.
func TestQuickstartBindsBeforePrinting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$", "--", "-addr", taken.Addr().String(), "-admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the quickstart fails on a taken port")
	assert.NotContains(t, string(out), "hello is at", "no URL printed before the bind failed")
	assert.True(t, strings.Contains(string(out), "address already in use"), "the reason is printed: %s", out)
}

// TestQuickstartServesFromZero runs the quickstart as a user would: it
// prints where hello is, serves the first request from zero (a real
// process started on demand), reports the cold start, and shuts down
// cleanly on SIGTERM.
func TestQuickstartServesFromZero(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$", "--", "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var out []string
	// next returns the first line (from now on) containing want.
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case l, ok := <-lines:
				require.True(t, ok, "the quickstart ended before printing %q; output:\n%s", want, strings.Join(out, "\n"))
				out = append(out, l)
				if strings.Contains(l, want) {
					return l
				}
			case <-ctx.Done():
				t.Fatalf("no %q within the test's deadline; output:\n%s", want, strings.Join(out, "\n"))
			}
		}
	}
	line := next("hello is at http://hello.default.localhost:")
	port := strings.Fields(strings.TrimPrefix(line, "hello is at http://hello.default.localhost:"))[0]

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1:"+port+"/", nil)
	require.NoError(t, err)
	req.Host = "hello.default.localhost"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Contains(t, string(body), "Hello from hello-00001")
	assert.Contains(t, next("instances"), "hello: 0 → 1 instances (cold start")

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	next("shutting down")
	for range lines { // drain to EOF
	}
	require.NoError(t, cmd.Wait(), "a clean exit")
}
