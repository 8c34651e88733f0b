package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/stats"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestParseEnvAndFlags(t *testing.T) {
	c, err := parse([]string{"-container-concurrency", "7", "-idle-timeout", "5s"}, env(map[string]string{
		"USER_PORT":                "9000",
		"CONTAINER_CONCURRENCY":    "3",
		"REVISION_TIMEOUT_SECONDS": "60",
		"PROBE_PATH":               "/healthz",
		"SERVING_POD":              "pod-a",
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if c.opts.Upstream != "127.0.0.1:9000" || c.opts.ContainerConcurrency != 7 || c.opts.Instance != "pod-a" ||
		c.opts.Timeouts.Request != time.Minute || c.opts.Timeouts.Idle != 5*time.Second ||
		c.opts.Readiness.HTTPPath != "/healthz" {
		t.Fatalf("parsed %+v", c)
	}
	// Knative's drain by default: a 30 s quiet period, and room for a
	// request arriving at its end.
	require.Equal(t, queueproxy.DefaultDrainQuietPeriod, c.opts.DrainQuietPeriod)
	require.Equal(t, 30*time.Second+time.Minute, c.drainTimeout)
}

func TestParseDrainQuietPeriod(t *testing.T) {
	c, err := parse(nil, env(map[string]string{"DRAIN_QUIET_PERIOD": "0"}), io.Discard)
	require.NoError(t, err)
	require.Negative(t, c.opts.DrainQuietPeriod, "0 on the command line is no quiet period")
	c, err = parse([]string{"-drain-quiet-period", "45s"}, env(nil), io.Discard)
	require.NoError(t, err)
	require.Equal(t, 45*time.Second, c.opts.DrainQuietPeriod)
	_, err = parse([]string{"-drain-quiet-period", "2h"}, env(nil), io.Discard)
	require.ErrorContains(t, err, "-drain-quiet-period")
}

func TestParseErrorsNameTheSetting(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{nil, map[string]string{"CONTAINER_CONCURRENCY": "many"}, "CONTAINER_CONCURRENCY"},
		{nil, map[string]string{"REVISION_TIMEOUT_SECONDS": "soon"}, "REVISION_TIMEOUT_SECONDS"},
		{[]string{"-user-port", "70000"}, nil, "-user-port"},
		{[]string{"-log-level", "loud"}, nil, "-log-level"},
		{[]string{"extra"}, nil, "unexpected"},
	} {
		if _, err := parse(tc.args, env(tc.env), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parse(%v, %v) = %v, want error naming %s", tc.args, tc.env, err, tc.want)
		}
	}
}

// TestBinary builds the static binary, runs it against a loopback app,
// and checks proxying, readiness and a graceful SIGTERM drain.
func TestBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	bin := filepath.Join(t.TempDir(), "queue-proxy")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			arrived <- struct{}{}
			<-release
		}
		_, _ = io.WriteString(w, "hello")
	}))
	defer app.Close()
	_, port, _ := strings.Cut(strings.TrimPrefix(app.URL, "http://"), ":")

	cmd := exec.Command(bin, "-serving-port", "0", "-metrics-port", "0", "-bind", "127.0.0.1")
	cmd.Env = []string{"USER_PORT=" + port, "CONTAINER_CONCURRENCY=2", "DRAIN_QUIET_PERIOD=1s"}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill() }()
	logs := bufio.NewScanner(stderr)
	var addr, metricsAddr string
	for addr == "" && logs.Scan() {
		var line struct{ Msg, Addr, Metrics string }
		if json.Unmarshal(logs.Bytes(), &line) == nil && line.Msg == "serving" {
			addr, metricsAddr = line.Addr, line.Metrics
		}
	}
	if addr == "" {
		t.Fatal("no serving log line")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	base := "http://" + addr
	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Error(err)
			return 0, ""
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := get(queueproxy.HealthPath); code != 200 || body != "ready" {
		t.Fatalf("health = %d %q", code, body)
	}
	if code, body := get("/"); code != 200 || body != "hello" {
		t.Fatalf("GET / = %d %q", code, body)
	}
	// The stats are on the serving port too (scrapers know only it).
	// (503 "no stats yet" until the first 1 s period ends.)
	require.Eventually(t, func() bool {
		code, body := get(stats.Path)
		return code == 200 && strings.HasPrefix(body, "{")
	}, 10*time.Second, 50*time.Millisecond, "GET %s on the serving port", stats.Path)
	slow := make(chan string)
	go func() { _, b := get("/slow"); slow <- b }()
	<-arrived
	// The app container's preStop: answers only once the drain is over.
	drained := make(chan string, 1)
	go func() {
		res, err := http.Get("http://" + metricsAddr + "/zeroscale/wait-for-drain")
		if err != nil {
			drained <- err.Error()
			return
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		drained <- strings.TrimSpace(string(b))
	}()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if code, body := get(queueproxy.HealthPath); code == 503 && body == "draining" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("health never turned to draining after SIGTERM")
		}
	}
	// Still serving: a load balancer may not know of the drain yet.
	if code, body := get("/"); code != 200 || body != "hello" {
		t.Fatalf("GET / while draining = %d %q", code, body)
	}
	select {
	case b := <-drained:
		t.Fatalf("wait-for-drain answered %q with a request in flight", b)
	default:
	}
	close(release)
	if b := <-slow; b != "hello" {
		t.Fatalf("in-flight request during drain got %q", b)
	}
	if b := <-drained; b != "drained" {
		t.Fatalf("wait-for-drain = %q, want drained", b)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after drain: %v", err)
	}
}

// The queue-proxy binds what its environment needs, not every
// interface (its stat and metrics port is unauthenticated): the pod IP
// on Kubernetes, loopback elsewhere. Before, the default was all
// interfaces. It also takes the app's protocol.
func TestBindDefaultsAndProtocol(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{nil, "127.0.0.1"},
		{map[string]string{"SERVING_POD_IP": "10.1.2.3"}, "10.1.2.3"},
		{map[string]string{"SERVING_POD_IP": "10.1.2.3", "QUEUE_BIND_HOST": "0.0.0.0"}, "0.0.0.0"},
	} {
		cfg, err := parse(nil, env(c.env), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.bindHost != c.want {
			t.Errorf("env %v: bind %q, want %q", c.env, cfg.bindHost, c.want)
		}
	}
	if cfg, err := parse([]string{"-user-protocol", "h2c"}, env(nil), io.Discard); err != nil || cfg.opts.Protocol != "h2c" {
		t.Errorf("-user-protocol h2c: %v, %v", cfg, err)
	}
	if _, err := parse([]string{"-user-protocol", "h3"}, env(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "-user-protocol") {
		t.Errorf("-user-protocol h3: error %v, want one naming the flag", err)
	}
}
