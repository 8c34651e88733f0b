package autoscaler

import (
	"context"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

func TestSampleSize(t *testing.T) {
	for n, want := range map[int]int{-1: 0, 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 10: 7, 20: 9, 50: 12, 100: 14, 1000: 16} {
		if got := sampleSize(n); got != want {
			t.Errorf("sampleSize(%d) = %d, want %d", n, got, want)
		}
	}
}

func newTestCollector(t *testing.T, o collectorOptions) (*collector, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(t0)
	o.Clock = clk
	return newCollector(o), clk
}

func TestCollectorPushRecordsNetOfProxied(t *testing.T) {
	var demand []string
	c, clk := newTestCollector(t, collectorOptions{OnDemand: func(rev string) { demand = append(demand, rev) }})
	require.NoError(t, c.Add("r", testParams(), false))

	// An instance and an activator report in the same second: they add up,
	// and what the activator proxied counts once.
	c.Report("r", stats.Stat{Instance: "i1", AverageConcurrency: 5, AverageProxiedConcurrency: 2, RequestCount: 10, ProxiedRequestCount: 4})
	c.Report("r", stats.Stat{Instance: "activator", AverageConcurrency: 2, RequestCount: 4, Timestamp: clk.Now()})
	c.Report("r", stats.Stat{Instance: "i2"}) // idle: no demand signal
	c.Report("unknown", stats.Stat{AverageConcurrency: 1})

	s, p, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.NoError(t, err)
	require.Equal(t, [2]float64{5, 5}, [2]float64{s, p}, "stable, panic")
	s, p, err = c.StableAndPanic("r", revision.MetricRPS, clk.Now())
	require.NoError(t, err)
	require.Equal(t, [2]float64{10, 10}, [2]float64{s, p}, "stable, panic")
	require.Equal(t, []string{"r", "r"}, demand, "demand signals")

	// A week-old timestamp is outside the window and ignored.
	c.Report("r", stats.Stat{AverageConcurrency: 1000, Timestamp: t0.Add(-7 * 24 * time.Hour)})
	s, _, _ = c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.InDelta(t, 5, s, 1e-9, "stable")
	// Non-finite stats are dropped, not recorded.
	c.Report("r", stats.Stat{AverageConcurrency: math.Inf(1)})
	s, _, _ = c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.InDelta(t, 5, s, 1e-9, "stable")
}

func TestCollectorNoData(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	require.NoError(t, c.Add("pushed", testParams(), false))
	require.NoError(t, c.Add("scraped", testParams(), true))
	p := testParams()
	p.TargetBurstCapacity = -1
	require. // activator always in path: pushes only
			NoError(t, c.Add("tbc-1", p, true))

	for rev, wantErr := range map[string]error{"pushed": nil, "scraped": errNoData, "tbc-1": nil, "gone": errNotCollecting} {
		_, _, err := c.StableAndPanic(rev, revision.MetricConcurrency, clk.Now())
		if !errors.Is(err, wantErr) {
			t.Errorf("%s: err = %v, want %v", rev, err, wantErr)
		}
	}
	c.Report("scraped", stats.Stat{AverageConcurrency: 1})
	_, _, err := c.StableAndPanic("scraped", revision.MetricConcurrency, clk.Now())
	require.NoError(t, err)
	_, _, err = c.StableAndPanic("scraped", revision.MetricConcurrency, clk.Now().Add(61*time.Second))
	require.ErrorIs(t, err, errNoData)

	c.Remove("scraped")
	_, _, err = c.StableAndPanic("scraped", revision.MetricConcurrency, clk.Now())
	require.ErrorIs(t, err, errNotCollecting)
}

// The collector takes what Multiscaler.Set validated (the windows and the
// algorithm are ScalingParams.validate's); it refuses only an empty name.
func TestCollectorAddValidates(t *testing.T) {
	c, _ := newTestCollector(t, collectorOptions{})
	require.Error(t, c.Add("", testParams(), false), "empty revision name")
	p := testParams()
	p.Algorithm = "median"
	require.ErrorContains(t, p.validate(), "Algorithm")
	p = testParams()
	p.PanicWindow = 0
	require.ErrorContains(t, p.validate(), "PanicWindow")
	p.PanicWindow = p.StableWindow + time.Second
	require.ErrorContains(t, p.validate(), "PanicWindow")
}

func TestCollectorUpdateResizesKeepingData(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	require.NoError(t, c.Add("r", testParams(), false))
	c.Report("r", stats.Stat{AverageConcurrency: 4})
	p := testParams()
	p.StableWindow, p.PanicWindow = 30*time.Second, 3*time.Second
	require.NoError(t, c.Add("r", p, false))
	s, pv, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.NoError(t, err)
	require.Equal(t, [2]float64{4, 4}, [2]float64{s, pv}, "stable, panic")
}

// statServer serves a fixed stat (or a status) on stats.Path and counts hits.
type statServer struct {
	*httptest.Server
	hits atomic.Int32
}

func newStatServer(t *testing.T, s stats.Stat, status int) *statServer {
	t.Helper()
	ss := &statServer{}
	ss.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ss.hits.Add(1)
		if r.URL.Path != stats.Path || r.Header.Get("Accept") != stats.ContentType {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if status != http.StatusOK {
			http.Error(w, "not ready", status)
			return
		}
		w.Header().Set("Content-Type", stats.ContentType)
		_ = stats.Encode(w, s)
	}))
	t.Cleanup(ss.Close)
	return ss
}

func (s *statServer) instance(started time.Time) backend.Instance {
	return backend.Instance{ID: s.URL, Revision: "r", Address: strings.TrimPrefix(s.URL, "http://"), Ready: true, Started: started}
}

func scrapeNow(c *collector) {
	var wg sync.WaitGroup
	c.scrapeAll(context.Background(), &wg)
	wg.Wait()
}

func TestCollectorScrapeExtrapolatesOldFirst(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	require.NoError(t, c.Add("r", testParams(), true))
	old := t0.Add(-time.Hour)
	var insts []backend.Instance
	var olds []*statServer
	for range 4 {
		s := newStatServer(t, stats.Stat{AverageConcurrency: 3, AverageProxiedConcurrency: 1, RequestCount: 5}, http.StatusOK)
		olds = append(olds, s)
		insts = append(insts, s.instance(old))
	}
	young := newStatServer(t, stats.Stat{AverageConcurrency: 100}, http.StatusOK)
	insts = append(insts, young.instance(t0))
	insts = append(insts, backend.Instance{Address: "127.0.0.1:1", Ready: false},
		backend.Instance{Address: "127.0.0.1:1", Ready: true, Draining: true})
	c.SetTargets("r", insts)

	scrapeNow(c) // N = 5 → sample 4, all old: (4 × 2) / 4 × 5 = 10
	s, _, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.NoError(t, err)
	require.InDelta(t, 10, s, 1e-9, "stable")
	s, _, _ = c.StableAndPanic("r", revision.MetricRPS, clk.Now())
	require.InDelta(t, 25, s, 1e-9, "stable")
	require.Equal(t, int32(0), young.hits.Load(), "young instance scraped while enough old ones answered")
	for _, o := range olds {
		require.Equal(t, int32(1), o.hits.Load(), "hits of an old instance")
	}
}

func TestCollectorScrapeFallsBackToYoung(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	require.NoError(t, c.Add("r", testParams(), true))
	old := t0.Add(-time.Hour)
	insts := []backend.Instance{newStatServer(t, stats.Stat{}, http.StatusServiceUnavailable).instance(old)}
	for range 3 {
		insts = append(insts, newStatServer(t, stats.Stat{AverageConcurrency: 1}, http.StatusOK).instance(old))
	}
	insts = append(insts, newStatServer(t, stats.Stat{AverageConcurrency: 1}, http.StatusOK).instance(t0))
	c.SetTargets("r", insts)
	scrapeNow(c)
	s, _, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.NoError(t, err)
	require.InDelta(t, 5, s, 1e-9, "stable")
	require.Equal(t, uint64(0), c.get("r").scrapeErrs.Load(), "scrape errors")
}

func TestCollectorFailedScrapeRecordsNothing(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	require.NoError(t, c.Add("r", testParams(), true))
	c.SetTargets("r", []backend.Instance{
		newStatServer(t, stats.Stat{AverageConcurrency: 1}, http.StatusOK).instance(t0),
		newStatServer(t, stats.Stat{AverageConcurrency: 1}, http.StatusOK).instance(t0),
		newStatServer(t, stats.Stat{}, http.StatusInternalServerError).instance(t0),
	})
	scrapeNow(c)
	_, _, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.ErrorIs(t, err, errNoData)
	col := c.get("r")
	require.Equal(t, uint64(1), col.scrapeErrs.Load(), "scrapeErrs")
	require.Equal(t, uint64(1), col.scrapes.Load(), "scrapes")

	// No targets: nothing scraped, nothing recorded, no error.
	c.SetTargets("r", nil)
	scrapeNow(c)
	require.Equal(t, uint64(1), col.scrapes.Load(), "scrapes")
}

func TestCollectorRunScrapesOnTheClock(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	require.NoError(t, c.Add("r", testParams(), true))
	srv := newStatServer(t, stats.Stat{AverageConcurrency: 7}, http.StatusOK)
	c.SetTargets("r", []backend.Instance{srv.instance(t0)})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Run(ctx) }()
	require.Eventually(t, clk.HasWaiters, 10*time.Second, time.Millisecond, "the scrape ticker")
	clk.Step(scrapeInterval)
	// The scrape is a real HTTP round trip on loopback.
	require.Eventually(t, func() bool {
		s, _, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
		return err == nil && s == 7
	}, 10*time.Second, time.Millisecond,

		"a scraped stat")
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
}

func TestCollectorWeightedExponential(t *testing.T) {
	c, clk := newTestCollector(t, collectorOptions{})
	p := testParams()
	p.Algorithm = revision.AlgorithmWeightedExponential
	require.NoError(t, c.Add("r", p, false))
	c.Report("r", stats.Stat{AverageConcurrency: 10})
	s, pv, err := c.StableAndPanic("r", revision.MetricConcurrency, clk.Now())
	require.NoError(t, err)
	// One second of 10: stable weighs it 0.2 (60 buckets), panic 0.7846 (6).
	require.InDelta(t, 2, s, 1e-9, "stable")
	if math.Abs(pv-7.846) > 1e-3 {
		t.Fatalf("panic = %v, want ≈ 7.846", pv)
	}
}
