package queueproxy

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

func approx(a, b float64) bool { return math.Abs(a-b) < 1e-6 }

// The three cases from Knative's request stats, on exact times.
func TestStatsTimeWeighted(t *testing.T) {
	at := func(ms int) time.Time { return epoch.Add(time.Duration(ms) * time.Millisecond) }
	for _, tc := range []struct {
		name   string
		events func(s *statsRecorder)
		want   float64
	}{
		{"one request all period", func(s *statsRecorder) { s.arrive(at(0), false); s.exit(at(1000), false) }, 1.0},
		{"one request half period", func(s *statsRecorder) { s.arrive(at(250), false); s.exit(at(750), false) }, 0.5},
		{"two overlapping", func(s *statsRecorder) {
			s.arrive(at(0), false)
			s.arrive(at(100), false)
			s.exit(at(600), false)
			s.exit(at(1000), false)
		}, 1.5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStatsRecorder(epoch)
			tc.events(s)
			st := s.report(at(1000))
			if !approx(st.AverageConcurrency, tc.want) {
				t.Errorf("AverageConcurrency = %v, want %v", st.AverageConcurrency, tc.want)
			}
		})
	}
}

// A request spanning two periods counts toward both periods'
// concurrency but only the arrival period's request count; proxied
// requests are a subset.
func TestStatsSpanningAndProxied(t *testing.T) {
	s := newStatsRecorder(epoch)
	s.arrive(epoch.Add(500*time.Millisecond), true)
	s.arrive(epoch.Add(500*time.Millisecond), false)
	first := s.report(epoch.Add(time.Second))
	s.exit(epoch.Add(1500*time.Millisecond), true)
	s.exit(epoch.Add(2000*time.Millisecond), false)
	second := s.report(epoch.Add(2 * time.Second))
	want := []stats.Stat{
		{AverageConcurrency: 1, AverageProxiedConcurrency: 0.5, RequestCount: 2, ProxiedRequestCount: 1, ProcessUptime: 1},
		{AverageConcurrency: 1.5, AverageProxiedConcurrency: 0.5, RequestCount: 0, ProxiedRequestCount: 0, ProcessUptime: 2},
	}
	for i, got := range []stats.Stat{first, second} {
		w := want[i]
		if !approx(got.AverageConcurrency, w.AverageConcurrency) || !approx(got.AverageProxiedConcurrency, w.AverageProxiedConcurrency) ||
			!approx(got.RequestCount, w.RequestCount) || !approx(got.ProxiedRequestCount, w.ProxiedRequestCount) ||
			!approx(got.ProcessUptime, w.ProcessUptime) {
			t.Errorf("period %d: got %+v, want %+v", i+1, got, w)
		}
	}
}

func TestNewValidation(t *testing.T) {
	for _, tc := range []struct {
		mod   func(*Options)
		field string
	}{
		{func(o *Options) { o.Upstream = "nope" }, "Upstream"},
		{func(o *Options) { o.ContainerConcurrency = -1 }, "ContainerConcurrency"},
		{func(o *Options) { o.ContainerConcurrency = revision.MaxContainerConcurrency + 1 }, "ContainerConcurrency"},
		{func(o *Options) { o.QueueDepth = -1 }, "QueueDepth"},
		{func(o *Options) { o.Timeouts.Request = -time.Second }, "Timeouts.Request"},
		{func(o *Options) { o.Timeouts.Request = 2 * time.Hour }, "Timeouts.Request"},
		{func(o *Options) { o.Timeouts.Request = time.Second; o.Timeouts.ResponseStart = time.Minute }, "Timeouts.ResponseStart"},
		{func(o *Options) { o.Readiness.HTTPPath = "healthz" }, "Readiness.HTTPPath"},
		{func(o *Options) { o.UpgradeDrainLimit = -1 }, "UpgradeDrainLimit"},
		{func(o *Options) { o.DrainQuietPeriod = 2 * time.Hour }, "DrainQuietPeriod"},
	} {
		o := Options{Upstream: "127.0.0.1:8080"}
		tc.mod(&o)
		if _, err := New(o); err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("New(%+v) = %v, want error naming %s", o, err, tc.field)
		}
	}
}

func TestProxyPassesRequestAndReportsStats(t *testing.T) {
	var mu sync.Mutex
	var got []stats.Stat
	reporter := stats.ReporterFunc(func(rev string, s stats.Stat) {
		if rev != "hello-00001" {
			t.Errorf("Report revision = %q", rev)
		}
		mu.Lock()
		got = append(got, s)
		mu.Unlock()
	})
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "hello "+r.URL.Path)
	})
	r := newRig(t, app, func(o *Options) { o.Reporter = reporter })
	metrics := httptest.NewServer(r.proxy.MetricsHandler())
	defer metrics.Close()
	if res, err := http.Get(metrics.URL + stats.Path); err != nil || res.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stat before first period: %v %v, want 503", res.StatusCode, err)
	}

	for range 3 {
		if code, body, _ := r.get("/x"); code != 200 || body != "hello /x" {
			t.Fatalf("GET /x = %d %q", code, body)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.proxy.Run(ctx) }()
	require.Eventually(t, func() bool { return r.clock.HasWaiters() }, waitTimeout, time.Millisecond)
	r.clock.Step(time.Second)
	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, waitTimeout, time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if s := got[0]; s.Instance != "hello-00001-a" || !approx(s.RequestCount, 3) || s.AverageConcurrency != 0 {
		// Requests took no fake time, so their concurrency is 0.
		t.Errorf("Stat = %+v, want 3 requests from hello-00001-a", s)
	}
	res, err := http.Get(metrics.URL + stats.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	s, err := stats.Decode(res.Body)
	if err != nil || res.Header.Get("Content-Type") != stats.ContentType || !approx(s.RequestCount, 3) {
		t.Fatalf("scraped %+v, %v (%s)", s, err, res.Header.Get("Content-Type"))
	}
}

// CC 1: one request runs, ten queue, the 12th gets 503 at once with
// Retry-After; the queued ones are all served once the first finishes.
func TestProxyQueueFull(t *testing.T) {
	g := newGate()
	r := newRig(t, g, func(o *Options) { o.ContainerConcurrency = 1 })
	var wg sync.WaitGroup
	for range 11 {
		wg.Go(func() {
			if code, body, _ := r.get("/"); code != 200 || body != "done" {
				t.Errorf("queued request = %d %q", code, body)
			}
		})
	}
	<-g.arrived
	require.Eventually(t, func() bool { return r.proxy.breaker.Pending() == 11 }, waitTimeout, time.Millisecond)
	code, body, h := r.get("/")
	if code != http.StatusServiceUnavailable || trimmed(body) != "queue full" || h.Get("Retry-After") == "" {
		t.Fatalf("12th request = %d %q Retry-After %q, want 503 queue full", code, body, h.Get("Retry-After"))
	}
	close(g.release)
	wg.Wait()
	if n := r.proxy.InFlight(); n != 0 {
		t.Fatalf("InFlight = %d after all done", n)
	}
}

func TestProxyTimeouts(t *testing.T) {
	t.Run("request timeout before response", func(t *testing.T) {
		g := newGate()
		r := newRig(t, g, func(o *Options) { o.Timeouts.Request = 10 * time.Second })
		done := make(chan struct{})
		go func() {
			defer close(done)
			code, body, _ := r.get("/")
			if code != http.StatusGatewayTimeout || trimmed(body) != "request timeout" {
				t.Errorf("got %d %q, want 504 request timeout", code, body)
			}
		}()
		<-g.arrived
		r.clock.Step(10 * time.Second)
		<-done
	})
	t.Run("response start timeout", func(t *testing.T) {
		g := newGate()
		r := newRig(t, g, func(o *Options) {
			o.Timeouts.Request = 10 * time.Second
			o.Timeouts.ResponseStart = 2 * time.Second
		})
		done := make(chan struct{})
		go func() {
			defer close(done)
			code, body, _ := r.get("/")
			if code != http.StatusGatewayTimeout || trimmed(body) != "response start timeout" {
				t.Errorf("got %d %q, want 504 response start timeout", code, body)
			}
		}()
		<-g.arrived
		r.clock.Step(time.Second)
		r.clock.Step(time.Second)
		<-done
	})
	t.Run("idle timeout cuts a started response", func(t *testing.T) {
		wrote := make(chan struct{})
		app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.WriteString(w, "partial")
			w.(http.Flusher).Flush()
			close(wrote)
			<-r.Context().Done()
		})
		r := newRig(t, app, func(o *Options) { o.Timeouts.Idle = 3 * time.Second })
		res, err := r.client.Get(r.url("/"))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		<-wrote
		buf := make([]byte, 7)
		if _, err := io.ReadFull(res.Body, buf); err != nil || string(buf) != "partial" {
			t.Fatalf("read %q, %v", buf, err)
		}
		require.Eventually(t, func() bool { return r.clock.HasWaiters() }, waitTimeout, time.Millisecond)
		r.clock.Step(3 * time.Second)
		if _, err := io.ReadAll(res.Body); err == nil {
			t.Fatal("response ended cleanly, want it cut")
		}
		if res.StatusCode != 200 {
			t.Fatalf("status %d, want the 200 already sent", res.StatusCode)
		}
	})
	t.Run("queued at the deadline", func(t *testing.T) {
		// A WebSocket holds the only slot (timeouts stop applying to
		// it once upgraded), so only the queued request's timer fires.
		r := newRig(t, echoWS, func(o *Options) {
			o.ContainerConcurrency = 1
			o.Timeouts.Request = 5 * time.Second
		})
		ws := dialWS(t, r)
		defer ws.CloseNow()
		queued := make(chan string)
		go func() { c, b, _ := r.get("/"); queued <- http.StatusText(c) + ": " + trimmed(b) }()
		require.Eventually(t, func() bool { return r.proxy.breaker.Pending() == 2 }, waitTimeout, time.Millisecond)
		r.clock.Step(5 * time.Second)
		if got, want := <-queued, "Gateway Timeout: request timeout while queued"; got != want {
			t.Errorf("queued request: %q, want %q", got, want)
		}
		if err := echo(t, ws, "still here"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestProxyRealClockTimeout(t *testing.T) {
	g := newGate()
	defer close(g.release)
	upstream := httptest.NewServer(g)
	defer upstream.Close()
	p, err := New(Options{Upstream: upstream.Listener.Addr().String(), Timeouts: revision.Timeouts{Request: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(p)
	defer front.Close()
	res, err := http.Get(front.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusGatewayTimeout || trimmed(string(b)) != "request timeout" {
		t.Fatalf("got %d %q, want 504 request timeout", res.StatusCode, b)
	}
}

func TestProxyUpstreamRefused(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), nil)
	p, err := New(Options{Upstream: closedAddr(t), Clock: r.clock})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusBadGateway || trimmed(rec.Body.String()) != "upstream unavailable" {
		t.Fatalf("got %d %q, want 502 upstream unavailable", rec.Code, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q", ct)
	}
}

func TestProxyUpstreamReset(t *testing.T) {
	app := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = c.Close() // reset before any response
		}
	})
	r := newRig(t, app, nil)
	if code, body, _ := r.get("/"); code != http.StatusBadGateway || trimmed(body) != "upstream unavailable" {
		t.Fatalf("got %d %q, want 502 upstream unavailable", code, body)
	}
}

func TestHeaderHygiene(t *testing.T) {
	seen := make(chan http.Header, 1)
	hosts := make(chan string, 1)
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Clone()
		hosts <- r.Host
	})
	r := newRig(t, app, func(o *Options) { o.ActivatorSecret = "s3cret" })
	internal := []string{hop.ActivatorHeader, hop.OriginalHostHeader, hop.RevisionHeader, hop.ProbeHeader}

	// A client spoofing every internal header: none reaches the app,
	// the Host stays, and nothing counts as proxied.
	r.get("/spoof", hop.ActivatorHeader, "guess", hop.OriginalHostHeader, "evil.example", hop.RevisionHeader, "other", hop.ProbeHeader, "")
	h, host := <-seen, <-hosts
	for _, k := range internal {
		if _, ok := h[k]; ok {
			t.Errorf("spoofed %s reached the app", k)
		}
	}
	if host == "evil.example" {
		t.Error("spoofed original host was restored")
	}
	if h.Get("X-Forwarded-For") != "127.0.0.1" || h.Get("X-Forwarded-Proto") != "http" || h.Get("X-Forwarded-Host") == "" {
		t.Errorf("forwarded headers: %v", h)
	}
	if f := h.Get("Forwarded"); !strings.HasPrefix(f, "for=127.0.0.1;host=") || !strings.HasSuffix(f, ";proto=http") {
		t.Errorf("Forwarded = %q", f)
	}
	if got := r.proxy.stats.proxied.arrivals.Load(); got != 0 {
		t.Errorf("spoofed request counted as proxied (%d)", got)
	}

	// The trusted activator: Host restored, counted as proxied, and
	// still no internal header reaches the app.
	r.get("/trusted", hop.ActivatorHeader, "s3cret", hop.OriginalHostHeader, "app.example", "X-Forwarded-For", "203.0.113.7")
	h, host = <-seen, <-hosts
	if host != "app.example" {
		t.Errorf("Host = %q, want the restored app.example", host)
	}
	for _, k := range internal {
		if _, ok := h[k]; ok {
			t.Errorf("%s reached the app", k)
		}
	}
	if got := h.Get("X-Forwarded-For"); got != "203.0.113.7, 127.0.0.1" {
		t.Errorf("X-Forwarded-For = %q", got)
	}
	// Knative's shim: the client's element carries host and proto; the
	// activator, this hop's peer, is no element.
	if f := h.Get("Forwarded"); f != "for=203.0.113.7;host=app.example;proto=http" {
		t.Errorf("Forwarded = %q", f)
	}
	if got := r.proxy.stats.proxied.arrivals.Load(); got != 1 {
		t.Errorf("trusted request proxied count = %d, want 1", got)
	}
}

func TestHealth(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), func(o *Options) { noQuiet(o); o.ActivatorSecret = "k" })
	if code, body, _ := r.get(HealthPath); code != 200 || trimmed(body) != "ready" {
		t.Fatalf("health = %d %q, want 200 ready", code, body)
	}
	if !r.proxy.Ready() || r.proxy.WaitReady(context.Background()) != nil {
		t.Fatal("not Ready after a passing probe")
	}
	// A trusted probe on any path is a health check; it bypasses stats.
	if code, body, _ := r.get("/anything", hop.ActivatorHeader, "k", hop.ProbeHeader, hop.ProbeValue); code != 200 || trimmed(body) != "ready" {
		t.Fatalf("trusted probe = %d %q", code, body)
	}
	if n := r.proxy.stats.all.arrivals.Load(); n != 0 {
		t.Errorf("health checks counted as requests: %d", n)
	}
	if err := r.proxy.Probe(context.Background()); err != nil {
		t.Fatalf("Probe = %v, want nil", err)
	}
	r.upstream.Close()
	if code, body, _ := r.get(HealthPath); code != 503 || trimmed(body) != "not ready" {
		t.Fatalf("health with app down = %d %q, want 503 not ready", code, body)
	}
	if err := r.proxy.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("Probe with app down = %v", err)
	}
	if err := r.proxy.Drain(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := r.proxy.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "draining") {
		t.Fatalf("Probe while draining = %v", err)
	}
}

// With Readiness.Period a health check answers from the last periodic
// result, but Probe asks the app now: a host that restarted the app must
// not be told "ready" by the previous run's result.
func TestProbeIsFreshWithPeriod(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), func(o *Options) { o.Readiness.Period = time.Hour })
	if err := r.proxy.Probe(context.Background()); err != nil {
		t.Fatalf("Probe = %v, want nil", err)
	}
	r.upstream.Close()
	if code, body, _ := r.get(HealthPath); code != 200 || trimmed(body) != "ready" {
		t.Fatalf("health with a cached result = %d %q, want 200 ready", code, body)
	}
	if err := r.proxy.Probe(context.Background()); err == nil || !strings.Contains(err.Error(), "not ready") {
		t.Fatalf("Probe with app down = %v, want not ready", err)
	}
	if r.proxy.Ready() {
		t.Fatal("Ready after Probe found the app down")
	}
}

func TestHTTPProbeAndStartupLoop(t *testing.T) {
	var mu sync.Mutex
	healthy := false
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/healthz" && healthy {
			return
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	r := newRig(t, app, func(o *Options) { o.Readiness.HTTPPath = "/healthz" })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- r.proxy.Run(ctx) }()
	// The loop probes every 50 ms until the app answers. A new 50 ms
	// wait (the third waiter, beside the stats ticker and the startup
	// limit) means the previous attempt is over.
	for i := range 4 {
		require.Eventually(t, func() bool { return r.clock.Waiters() >= 3 }, waitTimeout, time.Millisecond)
		if r.proxy.Ready() {
			t.Fatal("ready while the app answers 503")
		}
		if i == 3 {
			mu.Lock()
			healthy = true
			mu.Unlock()
		}
		r.clock.Step(revision.AggressiveProbePeriod)
	}
	if err := r.proxy.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), func(o *Options) {
		o.Registerer = reg
		o.ContainerConcurrency = 4
	})
	r.get("/")
	srv := httptest.NewServer(r.proxy.MetricsHandler())
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	for _, want := range []string{
		`zeroscale_queueproxy_requests_total{code="200",instance="hello-00001-a",revision="hello-00001"} 1`,
		`zeroscale_queueproxy_request_duration_seconds_count{instance="hello-00001-a",revision="hello-00001"} 1`,
		`zeroscale_queueproxy_breaker_capacity{instance="hello-00001-a",revision="hello-00001"} 4`,
		`zeroscale_queueproxy_queue_depth{`,
		`zeroscale_queueproxy_concurrency{`,
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	// Registering twice (a second proxy with the same labels) fails
	// clearly instead of panicking.
	if _, err := New(Options{Upstream: "127.0.0.1:1", Revision: "hello-00001", Instance: "hello-00001-a", Registerer: reg}); err == nil {
		t.Error("duplicate registration succeeded")
	}
}

func TestStatJSONMatchesWireFormat(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), nil)
	r.proxy.report(epoch.Add(time.Second))
	var m map[string]any
	if err := json.Unmarshal(*r.proxy.latest.Load(), &m); err != nil {
		t.Fatal(err)
	}
	if m["instance"] != "hello-00001-a" {
		t.Errorf("wire stat = %v", m)
	}
}

func TestRunTwice(t *testing.T) {
	r := newRig(t, http.NotFoundHandler(), nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.proxy.Run(ctx) }()
	require.Eventually(t, func() bool { return r.proxy.running.Load() }, waitTimeout, time.Millisecond)
	if err := r.proxy.Run(ctx); err == nil {
		t.Error("second concurrent Run succeeded")
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
}
