package kubernetes_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/k8slab"
	"github.com/zeroscale/zeroscale/internal/testapp"
)

// measureEnv turns on TestMeasureColdStart (a few minutes; not in CI).
const measureEnv = "ZEROSCALE_K8S_MEASURE"

// scaleRecorder wraps a Backend and records when each revision was
// first scaled above zero.
type scaleRecorder struct {
	backend.Backend
	mu    sync.Mutex
	first map[string]time.Time // revision → first Scale above zero
	ready map[string]time.Time // revision → first snapshot with a serving instance
}

func (r *scaleRecorder) Scale(ctx context.Context, rev string, n int) error {
	if n > 0 {
		r.mu.Lock()
		if _, ok := r.first[rev]; !ok {
			r.first[rev] = time.Now()
		}
		r.mu.Unlock()
	}
	return r.Backend.Scale(ctx, rev, n)
}

// Watch passes the snapshots on (newest replacing an unread one, as the
// contract says) and records when a revision first had a Ready
// instance.
func (r *scaleRecorder) Watch(ctx context.Context, rev string) (<-chan []backend.Instance, error) {
	in, err := r.Backend.Watch(ctx, rev)
	if err != nil {
		return nil, err
	}
	out := make(chan []backend.Instance, 1)
	go func() {
		defer close(out)
		for snap := range in {
			if slices.ContainsFunc(snap, backend.Instance.Serving) {
				r.mu.Lock()
				if _, ok := r.ready[rev]; !ok {
					r.ready[rev] = time.Now()
				}
				r.mu.Unlock()
			}
			select {
			case <-out:
			default:
			}
			out <- snap
		}
	}()
	return out, nil
}

func (r *scaleRecorder) Close() error { return r.Backend.(interface{ Close() error }).Close() }

func (r *scaleRecorder) times(rev string) (scaled, ready time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.first[rev], r.ready[rev]
}

func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func p50p95(ds []time.Duration) string {
	if len(ds) == 0 {
		return "n/a (step not reached before the first byte)"
	}
	return fmt.Sprintf("p50 %5.0f ms  p95 %5.0f ms", ms(pct(ds, 50)), ms(pct(ds, 95)))
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestMeasureColdStart measures, for the closing note, 20 sequential cold
// starts on Kubernetes split into phases, 20 on the process backend in
// the same run, and 25 Kubernetes services woken in parallel.
func TestMeasureColdStart(t *testing.T) {
	if os.Getenv(measureEnv) == "" {
		t.Skipf("set %s=1 to measure cold starts (a few minutes)", measureEnv)
	}
	const n, parallel = 20, 25
	c := lab.Cluster(t)
	var b strings.Builder
	for _, noEarly := range []bool{false, true} {
		mode := "early readiness (default)"
		if noEarly {
			mode = "kubelet readiness only (NoEarlyReadiness)"
		}
		kubeColdStarts(t, c, &b, mode, noEarly, n, parallel)
	}
	// The process backend in the same run, same app binary.
	pspec, err := testapp.Spec(testapp.Options{SayRevision: true})
	require.NoError(t, err)
	ps, err := zeroscale.New(zeroscale.Options{Config: zeroConfig()})
	require.NoError(t, err)
	t.Cleanup(func() { _ = ps.Shutdown(context.Background()) })
	pserver := &server{t: t, srv: ps, notify: make(chan struct{}), client: &http.Client{Timeout: time.Minute}}
	pserver.addr = serveOn(t, ps)
	var proc []time.Duration
	for i := range n {
		name := fmt.Sprintf("pcold-%02d", i)
		pserver.apply(zeroscale.ServiceSpec{Name: name, Template: pspec})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		r := pserver.get(ctx, name, "/")
		cancel()
		require.True(t, r.ok(), "process cold start %d: %v", i, r)
		proc = append(proc, r.ttfb)
		require.NoError(t, ps.Delete(t.Context(), name))
	}
	fmt.Fprintf(&b, "process backend, %d sequential cold starts, first byte: %s\n", n, p50p95(proc))

	t.Log("\n" + b.String())
}

// kubeColdStarts measures n sequential cold starts and parallel
// services from zero on a new Server and writes the results to b.
func kubeColdStarts(t *testing.T, c *k8slab.Cluster, b *strings.Builder, mode string, noEarly bool, n, parallel int) {
	rec := &scaleRecorder{first: map[string]time.Time{}, ready: map[string]time.Time{}}
	s := newServerWith(t, zeroConfig(), parallel, noEarly, func(b backend.Backend) backend.Backend {
		rec.Backend = b
		return rec
	})
	phases := map[string][]time.Duration{}
	order := []string{"request → scale patch", "scale patch → pod bound", "pod bound → pod IP", "pod IP → app listening", "app listening → Ready", "Ready → first byte", "total (first byte)"}

	record := func(phases map[string][]time.Duration, name string, t0 time.Time, ttfb time.Duration) {
		fb := t0.Add(ttfb)
		var ev map[k8slab.EventKind]time.Time
		for _, p := range c.Runtime.Pods(s.ns) {
			if strings.HasPrefix(p, name+"-") {
				ev = map[k8slab.EventKind]time.Time{}
				for _, e := range c.Runtime.Events(s.ns, p) {
					if _, seen := ev[e.Kind]; !seen && (e.Kind != k8slab.EventListening || e.Container == "user-container") {
						ev[e.Kind] = e.Time
					}
				}
			}
		}
		require.NotNil(t, ev, "no pod of %s", name)
		sc, ready := rec.times(name + "-00001")
		steps := []time.Time{t0, sc, ev[k8slab.EventBound], ev[k8slab.EventIP], ev[k8slab.EventListening], ready, fb}
		for j := range len(order) - 1 {
			// A step may not happen: with the activator probing, the first
			// byte can come before the backend reports Ready.
			if !steps[j].IsZero() && !steps[j+1].IsZero() && !steps[j+1].Before(steps[j]) {
				phases[order[j]] = append(phases[order[j]], steps[j+1].Sub(steps[j]))
			}
		}
		phases[order[len(order)-1]] = append(phases[order[len(order)-1]], ttfb)
	}
	for i := range n {
		name := fmt.Sprintf("cold-%02d", i)
		s.apply(zeroscale.ServiceSpec{Name: name, Template: e2eSpec()})
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		t0 := time.Now()
		r := s.get(ctx, name, "/")
		cancel()
		require.True(t, r.ok(), "cold start %d: %v", i, r)
		record(phases, name, t0, r.ttfb)
		require.NoError(t, s.srv.Delete(t.Context(), name))
	}
	fmt.Fprintf(b, "Kubernetes backend, %s, %d sequential cold starts (phases are consecutive):\n", mode, n)
	for _, k := range order {
		fmt.Fprintf(b, "  %-28s %s\n", k, p50p95(phases[k]))
	}

	// 25 services from zero at once.
	for i := range parallel {
		s.apply(zeroscale.ServiceSpec{Name: fmt.Sprintf("par-%02d", i), Template: e2eSpec()})
	}
	ttfb := make([]time.Duration, parallel)
	starts := make([]time.Time, parallel)
	var wg sync.WaitGroup
	for i := range parallel {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
			defer cancel()
			starts[i] = time.Now()
			r := s.get(ctx, fmt.Sprintf("par-%02d", i), "/")
			if !r.ok() {
				t.Errorf("parallel %d: %v", i, r)
			}
			ttfb[i] = r.ttfb
		})
	}
	wg.Wait()
	par := map[string][]time.Duration{}
	for i := range parallel {
		record(par, fmt.Sprintf("par-%02d", i), starts[i], ttfb[i])
	}
	fmt.Fprintf(b, "Kubernetes backend, %s, %d services from zero in parallel (phases are consecutive):\n", mode, parallel)
	for _, k := range order {
		fmt.Fprintf(b, "  %-28s %s\n", k, p50p95(par[k]))
	}
	fmt.Fprintf(b, "  max first byte %.0f ms\n", ms(slices.Max(ttfb)))
}
