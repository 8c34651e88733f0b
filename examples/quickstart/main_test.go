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

	"github.com/zeroscale/zeroscale/internal/otelenv/otlptest"
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
	assert.Contains(t, string(out), "address already in use", "the reason is printed: %s", out)
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

// Run as a new user would, with the standard OTLP variables naming a
// collector: the admin port serves /metrics with no set-up, and the
// trace of a cold start reaches the collector with one span per phase,
// the queue-proxy's hop in the same trace.
func TestQuickstartMetricsAndTraces(t *testing.T) {
	rcv := otlptest.NewReceiver(t)
	exe, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(exe, "-test.run=^$", "--", "-addr", "127.0.0.1:0", "-admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1", "OTEL_EXPORTER_OTLP_ENDPOINT="+rcv.URL, "OTEL_TRACES_EXPORTER=", "OTEL_SDK_DISABLED=")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = os.Stderr
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	// "curl -H 'Host: …' http://ADDR/" and "curl http://ADMIN/metrics".
	var data, admin string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && (data == "" || admin == "") {
		f := strings.Fields(sc.Text())
		for i, w := range f {
			switch {
			case strings.HasPrefix(w, "http://127.0.0.1:") && strings.HasSuffix(w, "/") && i > 0 && strings.HasPrefix(f[i-1], "hello.default"):
				data = strings.TrimSuffix(w, "/")
			case strings.HasSuffix(w, "/metrics"):
				admin = strings.TrimSuffix(w, "/metrics")
			}
		}
	}
	require.NotEmpty(t, data, "the data address is printed")
	require.NotEmpty(t, admin, "the /metrics URL is printed")
	go func() { _, _ = io.Copy(io.Discard, stdout) }()

	req, err := http.NewRequest("GET", data+"/", nil)
	require.NoError(t, err)
	req.Host = "hello.default.localhost"
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	req.Header.Set("Traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	assert.Contains(t, string(body), "Hello from hello-00001")

	res, err = http.Get(admin + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(res.Body)
	res.Body.Close()
	for _, want := range []string{"go_goroutines", "process_resident_memory_bytes",
		`zeroscale_activator_requests_total{code="200",revision="hello-00001"} 1`,
		`zeroscale_activator_cold_start_phase_seconds_count{phase="app_listening",revision="hello-00001"} 1`} {
		assert.Contains(t, string(metrics), want)
	}

	// SIGINT: the quickstart shuts down and flushes its spans.
	require.NoError(t, cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-exited:
		exited <- err
		require.NoError(t, err)
	case <-time.After(time.Minute):
		t.Fatal("the quickstart did not exit on SIGINT")
	}
	names := map[string]otlptest.Span{}
	for _, s := range rcv.Spans() {
		if s.TraceID == traceID {
			names[s.Name] = s
		}
	}
	for _, want := range []string{"zeroscale.activator.request", "zeroscale.activator.queued", "zeroscale.cold_start",
		"zeroscale.cold_start.scale_decision", "zeroscale.cold_start.engine_start", "zeroscale.cold_start.app_listening",
		"zeroscale.cold_start.probe_passed", "zeroscale.cold_start.first_byte", "queueproxy GET"} {
		assert.Contains(t, names, want, "span %s of the client's trace at the collector", want)
	}
	for _, p := range []string{"scale_decision", "engine_start", "app_listening", "probe_passed", "first_byte"} {
		if s, ok := names["zeroscale.cold_start."+p]; ok {
			t.Logf("%-15s %v", p, time.Duration(s.End-s.Start))
		}
	}
	if qp, ok := names["queueproxy GET"]; ok {
		assert.Equal(t, "zeroscale-quickstart", qp.Service)
		assert.Equal(t, names["zeroscale.activator.upstream"].SpanID, qp.ParentSpanID, "the queue-proxy's hop continues the activator's")
	}
}
