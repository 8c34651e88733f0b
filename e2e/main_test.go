package e2e_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptrace"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

func TestMain(m *testing.M) {
	testapp.Main() // the instances' app: this binary re-executed
	if spec := os.Getenv(floodEnv); spec != "" {
		os.Exit(runFloodAttacker(spec))
	}
	code := m.Run()
	dockerCleanup()
	removeCLI()
	os.Exit(code)
}

// appSpec is a template running this binary as internal/testapp, GET /
// answering "<revision>\n".
func appSpec(t testing.TB, env ...revision.EnvVar) revision.Spec {
	return appSpecWith(t, testapp.Options{Env: env})
}

// appSpecWith is appSpec with the app's variations o.
func appSpecWith(t testing.TB, o testapp.Options) revision.Spec {
	o.SayRevision = true
	spec, err := testapp.Spec(o)
	require.NoError(t, err)
	return spec
}

// harness is a Server on loopback listeners with its events recorded.
type harness struct {
	t      testing.TB
	srv    *zeroscale.Server
	addr   string
	client *http.Client

	mu     sync.Mutex
	events []zeroscale.Event
	notify chan struct{} // closed and replaced on each event
}

// zeroConfig starts revisions at zero and scales them to zero soon after
// their last request: a 6 s stable window (the minimum) and a 1 s grace.
func zeroConfig() autoscaler.Config {
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	cfg.StableWindow = 6 * time.Second
	cfg.ScaleToZeroGracePeriod = time.Second
	return cfg
}

// testLogger logs to stderr at debug level when E2E_DEBUG is set.
func testLogger() *slog.Logger {
	if os.Getenv("E2E_DEBUG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func newHarness(t testing.TB, cfg autoscaler.Config, conns int) *harness {
	return newHarnessWith(t, cfg, conns, nil)
}

// newHarnessWith is newHarness with the Server's options changed by mod
// (another backend, say).
func newHarnessWith(t testing.TB, cfg autoscaler.Config, conns int, mod func(*zeroscale.Options)) *harness {
	h := &harness{t: t, notify: make(chan struct{})}
	o := zeroscale.Options{
		Config:  cfg,
		Process: processOptions(),
		Logger:  testLogger(),
		// The default wait (max(3.5 × average start-up, 10 s)) assumes
		// an unloaded host; 100 race-instrumented apps starting at once
		// on 2 shared cores take longer.
		WaitTimeout: 2 * time.Minute,
		OnEvent:     h.record,
	}
	if mod != nil {
		mod(&o)
	}
	srv, err := zeroscale.New(o)
	require.NoError(t, err)
	h.srv = srv
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	h.addr = ln.Addr().String()
	go srv.Serve(ln)
	h.client = &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns, MaxIdleConns: conns, IdleConnTimeout: time.Minute},
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		h.client.CloseIdleConnections()
	})
	return h
}

func (h *harness) record(e zeroscale.Event) {
	h.t.Log(e.String())
	h.mu.Lock()
	h.events = append(h.events, e)
	close(h.notify)
	h.notify = make(chan struct{})
	h.mu.Unlock()
}

// waitEvent waits (bounded) for an event matching ok, looking at past
// events too.
func (h *harness) waitEvent(timeout time.Duration, what string, ok func(zeroscale.Event) bool) zeroscale.Event {
	h.t.Helper()
	deadline := time.After(timeout)
	seen := 0
	for {
		h.mu.Lock()
		evs, ch := h.events[seen:], h.notify
		seen = len(h.events)
		h.mu.Unlock()
		for _, e := range evs {
			if ok(e) {
				return e
			}
		}
		select {
		case <-ch:
		case <-deadline:
			h.t.Fatalf("no %s within %v", what, timeout)
		}
	}
}

// waitRevision polls the service's status (a real-process event) until
// one of its revisions satisfies ok.
func (h *harness) waitRevision(timeout time.Duration, service, what string, ok func(zeroscale.RevisionStatus) bool) {
	h.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		st, err := h.srv.ServiceStatus(service)
		require.NoError(h.t, err)
		if slices.ContainsFunc(st.Revisions, ok) {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling real processes, bounded above
	}
	h.t.Fatalf("%s: no %s within %v", service, what, timeout)
}

func (h *harness) apply(spec zeroscale.ServiceSpec) {
	h.t.Helper()
	if _, err := h.srv.Apply(context.Background(), spec); err != nil {
		h.t.Fatal(err)
	}
}

// result is one request's outcome.
type result struct {
	code int
	body string
	ttfb time.Duration
	hdr  http.Header
	err  error
}

// get sends GET path to service's host and reads the whole answer.
func (h *harness) get(ctx context.Context, service, path string) result {
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+h.addr+path, nil)
	if err != nil {
		return result{err: err}
	}
	req.Host = service + ".default.localhost"
	var first time.Time
	start := time.Now()
	req = req.WithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	resp, err := h.client.Do(req)
	if err != nil {
		return result{err: err}
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return result{code: resp.StatusCode, body: string(body), ttfb: first.Sub(start), hdr: resp.Header, err: err}
}

func (r result) ok() bool { return r.err == nil && r.code == http.StatusOK }

func (r result) String() string {
	if r.err != nil {
		return r.err.Error()
	}
	return fmt.Sprintf("%d %q", r.code, r.body)
}

// idealLaunch is the ideal launcher: it starts the app directly, connects
// every 0.2 ms until it accepts, and sends GET / on that connection at
// once. It returns the time from exec to listening (the app's own
// time-to-listen: exec and runtime start included) and to the response's
// first byte.
func idealLaunch(t testing.TB) (listen, firstByte time.Duration) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	spec := appSpec(t)
	cmd := exec.Command(spec.Command[0])
	cmd.Env = append(os.Environ(), "PORT="+port, "K_REVISION=direct")
	for _, e := range spec.Env {
		cmd.Env = append(cmd.Env, e.Name+"="+e.Value)
	}
	start := time.Now()
	require.NoError(t, cmd.Start())
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	for time.Since(start) < 30*time.Second {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			time.Sleep(200 * time.Microsecond) // polling a real process; the interval bounds the error
			continue
		}
		listen = time.Since(start)
		defer c.Close()
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: direct\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil {
			t.Fatal(err)
		}
		return listen, time.Since(start)
	}
	t.Fatal("the app did not listen within 30 s")
	return 0, 0
}

// percentile returns the p-th percentile (0–100, nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) + "ms"
}
