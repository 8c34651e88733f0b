package zeroscale_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// observed is a Server with no Registerer (metrics on by default) on the
// fake backend, its data and admin listeners on loopback.
type observed struct {
	srv        *zeroscale.Server
	url, admin string
}

func newObserved(t *testing.T, o zeroscale.Options, startDelay time.Duration) *observed {
	t.Helper()
	if o.NewBackend == nil {
		o.NewBackend = func(drain backend.DrainFunc) (backend.Backend, error) {
			return fake.New(fake.Options{Drain: drain, StartDelay: startDelay})
		}
	}
	if o.Config == (autoscaler.Config{}) {
		o.Config = zeroCfg()
	}
	srv, err := zeroscale.New(o)
	require.NoError(t, err)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go func() { _ = srv.Serve(ln) }()
	go func() { _ = srv.ServeAdmin(adminLn) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	return &observed{srv: srv, url: "http://" + ln.Addr().String(), admin: "http://" + adminLn.Addr().String()}
}

// request sends GET / to service hello with optional headers and
// returns the response (body read) and its time to first byte.
func (o *observed) request(t *testing.T, header http.Header) (*http.Response, string, time.Duration) {
	t.Helper()
	req, err := http.NewRequest("GET", o.url+"/", nil)
	require.NoError(t, err)
	req.Host = "hello.default.localhost"
	for k, v := range header {
		req.Header[k] = v
	}
	// From the request's last byte written to the response's first byte
	// read: the connection's dial is not the Server's.
	var wrote, first time.Time
	req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
		WroteRequest:         func(httptrace.WroteRequestInfo) { wrote = time.Now() },
		GotFirstResponseByte: func() { first = time.Now() },
	}))
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	ttfb := first.Sub(wrote)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b), ttfb
}

// scrape GETs /metrics from the admin listener, as Prometheus would.
func scrape(t *testing.T, admin string) map[string]*dto.MetricFamily {
	t.Helper()
	res, err := http.Get(admin + "/metrics")
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(res.Body)
	require.NoError(t, err)
	return mfs
}

// series returns the metrics of family name whose labels include want.
func series(mfs map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	mf := mfs[name]
	if mf == nil {
		return nil
	}
next:
	for _, m := range mf.GetMetric() {
		got := map[string]string{}
		for _, l := range m.GetLabel() {
			got[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if got[k] != v {
				continue next
			}
		}
		out = append(out, m)
	}
	return out
}

// value is the one series of name with labels want: a gauge's or
// counter's value, a histogram's count.
func value(t *testing.T, mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	t.Helper()
	ms := series(mfs, name, want)
	require.Len(t, ms, 1, "%s%v: want one series", name, want)
	m := ms[0]
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	t.Fatalf("%s: neither gauge, counter nor histogram", name)
	return 0
}

func TestMetricsOnByDefault(t *testing.T) {
	o := newObserved(t, zeroscale.Options{}, 50*time.Millisecond)
	_, err := o.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	res, _, _ := o.request(t, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.NotEmpty(t, res.Header.Get("Zeroscale-Cold-Start"), "the first request was a cold start")

	rev := map[string]string{"revision": "hello-00001"}
	var mfs map[string]*dto.MetricFamily
	// The autoscaler's figures follow its next tick; the activator's
	// counters are final once the response ended.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		mfs = scrape(t, o.admin)
		assert.Len(c, series(mfs, "zeroscale_autoscaler_serving_instances", rev), 1)
		if ms := series(mfs, "zeroscale_autoscaler_serving_instances", rev); len(ms) == 1 {
			assert.Equal(c, 1.0, ms[0].GetGauge().GetValue())
		}
	}, 10*time.Second, 10*time.Millisecond)

	// The Go runtime and the process, as any Go service's /metrics.
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		assert.Contains(t, mfs, name)
	}
	ok := map[string]string{"revision": "hello-00001", "code": "200"}
	assert.Equal(t, 1.0, value(t, mfs, "zeroscale_activator_requests_total", ok))
	assert.Equal(t, 1.0, value(t, mfs, "zeroscale_activator_request_duration_seconds", ok))
	assert.Equal(t, 1.0, value(t, mfs, "zeroscale_activator_cold_starts_total", rev))
	assert.Equal(t, 1.0, value(t, mfs, "zeroscale_activator_cold_start_wait_seconds", rev))
	assert.Equal(t, 0.0, value(t, mfs, "zeroscale_activator_held_requests", rev))
	assert.Equal(t, 1.0, value(t, mfs, "zeroscale_autoscaler_requested_instances", rev))
	assert.Equal(t, 0.0, value(t, mfs, "zeroscale_autoscaler_panic_mode", rev))
	assert.Equal(t, 2.0, value(t, mfs, "zeroscale_autoscaler_panic_threshold", rev))
	conc := map[string]string{"revision": "hello-00001", "metric": "concurrency"}
	assert.Equal(t, 70.0, value(t, mfs, "zeroscale_autoscaler_target_value", conc), "100 × 70 % utilization")
	for _, name := range []string{"zeroscale_autoscaler_desired_instances", "zeroscale_autoscaler_excess_burst_capacity"} {
		assert.Len(t, series(mfs, name, rev), 1, name)
	}
	for _, name := range []string{"zeroscale_autoscaler_stable_value", "zeroscale_autoscaler_panic_value"} {
		assert.Len(t, series(mfs, name, conc), 1, name)
	}
}

// Two Servers in one process each have their own registry: no
// "duplicate metrics collector registration", no global state.
func TestMetricsRegistryPerServer(t *testing.T) {
	a := newObserved(t, zeroscale.Options{}, 0)
	b := newObserved(t, zeroscale.Options{}, 0)
	for _, o := range []*observed{a, b} {
		assert.Contains(t, scrape(t, o.admin), "go_goroutines")
	}
}

// coldStartTolerance bounds the client's time to first byte minus the
// cold-start phases the activator measured: the front door's parse
// before the activator and the response's way back over loopback.
// Typically under 2 ms; generous for a shared 2-core machine under -race
// with other test binaries running (55 ms was seen once at 50).
const coldStartTolerance = 100 * time.Millisecond

// A cold start's trace, recorded with the SDK's in-memory exporter: the
// client's trace continues through the front door to the app, and the
// cold start is one span per phase, in order, back to back, adding up to
// the time to first byte the client measured.
func TestColdStartTrace(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	const startDelay = 100 * time.Millisecond
	appSaw := make(chan string, 1)
	o := newObserved(t, zeroscale.Options{
		TracerProvider: tp,
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			return fake.New(fake.Options{Drain: drain, StartDelay: startDelay, Handler: func(revision.Revision) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if r.URL.Path == queueproxy.HealthPath {
						// The activator's probe of an instance not yet
						// ready; this app is no queue-proxy (404).
						http.NotFound(w, r)
						return
					}
					select {
					case appSaw <- r.Header.Get("Traceparent"):
					default:
					}
				})
			}})
		},
	}, 0)
	_, err := o.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	res, _, ttfb := o.request(t, http.Header{"Traceparent": {"00-" + traceID + "-00f067aa0ba902b7-01"}})
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, <-appSaw, "00-"+traceID+"-", "the app continues the client's trace")

	byName := map[string]tracetest.SpanStub{}
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		for _, s := range exp.GetSpans() {
			byName[s.Name] = s
		}
		assert.Contains(c, byName, "zeroscale.activator.request")
	}, 10*time.Second, time.Millisecond)
	for name, s := range byName {
		assert.Equal(t, traceID, s.SpanContext.TraceID().String(), name)
	}
	for _, name := range []string{"zeroscale.activator.queued", "zeroscale.activator.upstream"} {
		assert.Contains(t, byName, name)
	}
	cs, ok := byName["zeroscale.cold_start"]
	require.True(t, ok, "a cold_start span")
	at, sum := cs.StartTime, time.Duration(0)
	phases := []string{activator.PhaseScaleDecision, activator.PhaseEngineStart, activator.PhaseAppListening, activator.PhaseProbePassed, activator.PhaseFirstByte}
	for _, p := range phases {
		s, ok := byName["zeroscale.cold_start."+p]
		require.True(t, ok, p)
		assert.Equal(t, cs.SpanContext.SpanID(), s.Parent.SpanID(), p)
		assert.Equal(t, at, s.StartTime, "%s starts where the phase before it ended", p)
		d := s.EndTime.Sub(s.StartTime)
		t.Logf("%-15s %v", p, d)
		sum += d
		at = s.EndTime
	}
	assert.Equal(t, cs.EndTime, at)
	assert.GreaterOrEqual(t, byName["zeroscale.cold_start."+activator.PhaseAppListening].EndTime.Sub(
		byName["zeroscale.cold_start."+activator.PhaseAppListening].StartTime), startDelay, "the app took StartDelay to listen")
	t.Logf("phases %v, client's time to first byte %v", sum, ttfb)
	assert.LessOrEqual(t, sum, ttfb)
	assert.Less(t, ttfb-sum, coldStartTolerance)

	// The same phases, as a Prometheus histogram.
	mfs := scrape(t, o.admin)
	for _, p := range phases {
		assert.Equal(t, 1.0, value(t, mfs, "zeroscale_activator_cold_start_phase_seconds", map[string]string{"revision": "hello-00001", "phase": p}), p)
	}
	assert.Equal(t, 1.0, value(t, mfs, "zeroscale_activator_cold_start_seconds", map[string]string{"revision": "hello-00001"}))
}
