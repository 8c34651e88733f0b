package autoscaler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/autoscaler/aggregation"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// collector constants, Knative's.
const (
	// scrapeInterval is how often every scraped revision is scraped.
	scrapeInterval = time.Second
	// ScrapeTimeout bounds one instance's scrape.
	ScrapeTimeout = 3 * time.Second
	// DefaultMaxConcurrentScrapes bounds how many revisions are scraped at
	// once (each scrape fetches up to 16 instances in parallel).
	DefaultMaxConcurrentScrapes = 64
)

var (
	// errNoData means a scraped revision has had no stat within its stable
	// window: the decider must not decide (the previous decision stands).
	errNoData = errors.New("autoscaler: no data")
	// errNotCollecting means the revision was never added or was removed.
	errNotCollecting = errors.New("autoscaler: revision not being collected")
	// errTooFewScraped means fewer instances than the sample size answered.
	errTooFewScraped = errors.New("too few instances answered for a meaningful extrapolation")
)

// collectorOptions configure a collector. The zero value works.
type collectorOptions struct {
	// Clock times pushed stats without a timestamp, scraped stats and the
	// scrape ticker. nil means the real clock.
	Clock clock.WithTicker
	// Logger receives scrape failures. nil discards.
	Logger *slog.Logger
	// HTTPClient scrapes remote instances. nil means a client with
	// keep-alives and no timeout of its own (each scrape is bounded by
	// ScrapeTimeout).
	HTTPClient *http.Client
	// MaxConcurrentScrapes bounds how many revisions are scraped at once;
	// 0 means DefaultMaxConcurrentScrapes.
	MaxConcurrentScrapes int
	// OnDemand, when set, is called after a pushed stat with a positive
	// average concurrency is recorded (the Multiscaler's Poke). It runs on
	// the reporter's goroutine and must not block.
	OnDemand func(revision string)
}

// collector turns stats into per-revision metric windows, Knative's
// MetricCollector. Stats arrive two ways into the same windows:
//
//   - pushed through Report (stats.Reporter) by in-process queue-proxies
//     and activators, at any rate;
//   - scraped, for revisions added with scrape on, from each ready
//     instance's queue-proxy every second: GET http://<address>/zeroscale/stat
//     (stats.Path) with Accept: application/json, answered 200 with one
//     JSON stats.Stat of at most stats.MaxEncodedSize bytes (stats.Encode).
//     Knative's sample of n(N) = N for N ≤ 3, else
//     ceil(N·15.3664 / (N + 14.3664)) instances is scraped, old instances
//     (up for at least the stable window) first, and the sum is
//     extrapolated to all N. If fewer than n instances answer nothing is
//     recorded for that second (and a scrape error is counted), rather
//     than a misleading zero.
//
// Each stat is recorded as concurrency = average − proxied concurrency
// and rps = requests − proxied requests, so a request the activator
// proxied (and reported itself) counts once. Several stats in one second
// add up.
//
// Memory per revision is fixed by its windows: 16 bytes per second of
// the stable window plus 16 per second of the panic window, and the
// scrape targets the host supplied. All methods are safe for concurrent
// use; Report never blocks on I/O.
type collector struct {
	clock    clock.WithTicker
	log      *slog.Logger
	client   *http.Client
	sem      chan struct{}
	onDemand func(string)

	mu   sync.RWMutex
	revs map[string]*collection
}

// averager is one metric window.
type averager interface {
	Record(t time.Time, v float64)
	Average(now time.Time) float64
	IsEmpty(now time.Time) bool
	Resize(window time.Duration, now time.Time) error
}

type collection struct {
	mu                    sync.Mutex
	concStable, concPanic averager
	rpsStable, rpsPanic   averager
	stableWindow          time.Duration
	scrape                bool
	targets               []scrapeTarget
	scraping              atomic.Bool
	// scaling is set by a Multiscaler while the revision's desired scale
	// is above zero: a Poke would do nothing, so Report skips OnDemand.
	scaling             atomic.Bool
	scrapes, scrapeErrs atomic.Uint64
}

type scrapeTarget struct {
	address string
	started time.Time
}

// newCollector returns an empty collector. Call Run to scrape.
func newCollector(o collectorOptions) *collector {
	c := &collector{
		clock:    o.Clock,
		log:      o.Logger,
		client:   o.HTTPClient,
		onDemand: o.OnDemand,
		revs:     make(map[string]*collection),
	}
	if c.clock == nil {
		c.clock = clock.RealClock{}
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.client == nil {
		c.client = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2, IdleConnTimeout: time.Minute}}
	}
	n := o.MaxConcurrentScrapes
	if n <= 0 {
		n = DefaultMaxConcurrentScrapes
	}
	c.sem = make(chan struct{}, n)
	return c
}

func newAverager(alg revision.Algorithm, w time.Duration) (averager, error) {
	switch alg {
	case revision.AlgorithmWeightedExponential:
		return aggregation.NewWeightedExponential(w)
	default: // linear or "": ScalingParams.validate refused any other
		return aggregation.NewLinear(w)
	}
}

// Add starts collecting for rev with p's windows and algorithm, or
// updates an existing collection (resizing its windows, keeping their
// data; the algorithm of an existing collection does not change). scrape
// says the revision's instances serve stats to be scraped; it has no
// effect when p.TargetBurstCapacity is −1, since the activator is then
// always in the path and its pushes are the only source, as in Knative.
func (c *collector) Add(rev string, p ScalingParams, scrape bool) error {
	if rev == "" {
		return errors.New("autoscaler: empty revision name")
	}
	scrape = scrape && p.TargetBurstCapacity != -1
	c.mu.Lock()
	defer c.mu.Unlock()
	if col, ok := c.revs[rev]; ok {
		now := c.clock.Now()
		col.mu.Lock()
		defer col.mu.Unlock()
		for _, r := range []struct {
			a averager
			w time.Duration
		}{{col.concStable, p.StableWindow}, {col.rpsStable, p.StableWindow}, {col.concPanic, p.PanicWindow}, {col.rpsPanic, p.PanicWindow}} {
			if err := r.a.Resize(r.w, now); err != nil {
				return fmt.Errorf("autoscaler: revision %s: %w", rev, err)
			}
		}
		col.stableWindow, col.scrape = p.StableWindow, scrape
		return nil
	}
	col := &collection{stableWindow: p.StableWindow, scrape: scrape}
	var err error
	for _, w := range []struct {
		dst *averager
		w   time.Duration
	}{{&col.concStable, p.StableWindow}, {&col.rpsStable, p.StableWindow}, {&col.concPanic, p.PanicWindow}, {&col.rpsPanic, p.PanicWindow}} {
		if *w.dst, err = newAverager(p.Algorithm, w.w); err != nil {
			return fmt.Errorf("autoscaler: revision %s: %w", rev, err)
		}
	}
	c.revs[rev] = col
	return nil
}

// Remove stops collecting for rev and frees its windows. An in-flight
// scrape of rev finishes but records nothing.
func (c *collector) Remove(rev string) {
	c.mu.Lock()
	delete(c.revs, rev)
	c.mu.Unlock()
}

func (c *collector) get(rev string) *collection {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.revs[rev]
}

// SetTargets replaces rev's scrape targets with its serving instances
// (Instance.Serving) that have an address. Unknown revisions are ignored.
func (c *collector) SetTargets(rev string, instances []backend.Instance) {
	col := c.get(rev)
	if col == nil {
		return
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	col.targets = col.targets[:0]
	for _, in := range instances {
		if in.Serving() && in.Address != "" {
			col.targets = append(col.targets, scrapeTarget{address: in.Address, started: in.Started})
		}
	}
}

// Report records a pushed stat for rev, timed at s.Timestamp or, when
// that is zero, now, then calls OnDemand if the stat shows concurrency
// (unless a Multiscaler already scales rev above zero). Stats for
// revisions not added are dropped (a reporter may run ahead of the
// host's Add). It implements stats.Reporter.
func (c *collector) Report(rev string, s stats.Stat) {
	col := c.get(rev)
	if col == nil {
		return
	}
	at := s.Timestamp
	if at.IsZero() {
		at = c.clock.Now()
	}
	col.record(at, s)
	if s.AverageConcurrency > 0 && c.onDemand != nil && !col.scaling.Load() {
		c.onDemand(rev)
	}
}

var _ stats.Reporter = (*collector)(nil)

// Record records s for rev at at and reports whether rev is collected.
// Unlike Report it never calls OnDemand (for replaying traces).
func (c *collector) Record(rev string, at time.Time, s stats.Stat) bool {
	col := c.get(rev)
	if col == nil {
		return false
	}
	col.record(at, s)
	return true
}

func (col *collection) record(at time.Time, s stats.Stat) {
	conc := s.AverageConcurrency - s.AverageProxiedConcurrency
	rps := s.RequestCount - s.ProxiedRequestCount
	// A non-finite value would poison the windows' sums until it left
	// them: such a stat is ignored.
	if math.IsNaN(conc) || math.IsInf(conc, 0) || math.IsNaN(rps) || math.IsInf(rps, 0) {
		return
	}
	col.mu.Lock()
	col.concStable.Record(at, conc)
	col.concPanic.Record(at, conc)
	col.rpsStable.Record(at, rps)
	col.rpsPanic.Record(at, rps)
	col.mu.Unlock()
}

// StableAndPanic returns rev's metric m averaged over the stable and the
// panic window as of now. A scraped revision without any stat within
// its stable window returns errNoData; a push-only one reads 0.
func (c *collector) StableAndPanic(rev string, m revision.Metric, now time.Time) (stable, panic float64, err error) {
	col := c.get(rev)
	if col == nil {
		return 0, 0, fmt.Errorf("%w: %s", errNotCollecting, rev)
	}
	return col.stableAndPanic(m, now)
}

func (col *collection) stableAndPanic(m revision.Metric, now time.Time) (stable, panic float64, err error) {
	col.mu.Lock()
	defer col.mu.Unlock()
	s, p := col.concStable, col.concPanic
	if m == revision.MetricRPS {
		s, p = col.rpsStable, col.rpsPanic
	}
	if col.scrape && s.IsEmpty(now) {
		return 0, 0, errNoData
	}
	return s.Average(now), p.Average(now), nil
}

// Run scrapes every scraped revision every scrapeInterval until ctx is
// done, then waits for in-flight scrapes and returns ctx's error.
func (c *collector) Run(ctx context.Context) error {
	t := c.clock.NewTicker(scrapeInterval)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C():
			c.scrapeAll(ctx, &wg)
		}
	}
}

// scrapeAll starts one scrape per scraped revision with targets that is
// not still being scraped, at most MaxConcurrentScrapes at a time.
func (c *collector) scrapeAll(ctx context.Context, wg *sync.WaitGroup) {
	type job struct {
		rev string
		col *collection
	}
	c.mu.RLock()
	jobs := make([]job, 0, 16)
	for rev, col := range c.revs {
		col.mu.Lock()
		ok := col.scrape && len(col.targets) > 0
		col.mu.Unlock()
		if ok {
			jobs = append(jobs, job{rev, col})
		}
	}
	c.mu.RUnlock()
	for _, j := range jobs {
		if !j.col.scraping.CompareAndSwap(false, true) {
			continue // the previous scrape is still running
		}
		select {
		case c.sem <- struct{}{}:
		case <-ctx.Done():
			j.col.scraping.Store(false)
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-c.sem; j.col.scraping.Store(false) }()
			c.scrapeRevision(ctx, j.rev, j.col)
		}()
	}
}

// scrapeRevision scrapes a sample of rev's targets and records the
// extrapolated stat, or counts an error and records nothing.
func (c *collector) scrapeRevision(ctx context.Context, rev string, col *collection) {
	now := c.clock.Now()
	col.mu.Lock()
	old, young := splitByAge(col.targets, now, col.stableWindow)
	col.mu.Unlock()
	total := len(old) + len(young)
	if total == 0 {
		return
	}
	n := sampleSize(total)
	// All old instances are used when there are not enough of them, so
	// only the young backups need shuffling; otherwise pick old at random.
	if len(old) < n {
		rand.Shuffle(len(young), func(i, j int) { young[i], young[j] = young[j], young[i] })
	} else {
		rand.Shuffle(len(old), func(i, j int) { old[i], old[j] = old[j], old[i] })
	}
	order := append(old, young...)

	col.scrapes.Add(1)
	sum, err := c.scrapeSample(ctx, order, n)
	if err != nil {
		col.scrapeErrs.Add(1)
		c.log.Warn("autoscaler: scrape failed", "revision", rev, "instances", total, "sample", n, "err", err)
		return
	}
	f := float64(total) / float64(n)
	sum.AverageConcurrency *= f
	sum.AverageProxiedConcurrency *= f
	sum.RequestCount *= f
	sum.ProxiedRequestCount *= f
	if c.get(rev) == col { // not removed or replaced meanwhile
		col.record(c.clock.Now(), sum)
	}
}

func splitByAge(ts []scrapeTarget, now time.Time, window time.Duration) (old, young []scrapeTarget) {
	for _, t := range ts {
		if now.Sub(t.started) >= window {
			old = append(old, t)
		} else {
			young = append(young, t)
		}
	}
	return old, young
}

// scrapeSample runs n workers over order (each moving on to the next
// target when one fails) and sums the n stats, or fails when the
// targets run out first.
func (c *collector) scrapeSample(ctx context.Context, order []scrapeTarget, n int) (stats.Stat, error) {
	var (
		next    atomic.Int64
		wg      sync.WaitGroup
		mu      sync.Mutex
		sum     stats.Stat
		got     int
		lastErr error
	)
	next.Store(-1)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i >= int64(len(order)) {
					return
				}
				s, err := c.fetch(ctx, order[i].address)
				mu.Lock()
				if err != nil {
					lastErr = err
					mu.Unlock()
					continue
				}
				sum.AverageConcurrency += s.AverageConcurrency
				sum.AverageProxiedConcurrency += s.AverageProxiedConcurrency
				sum.RequestCount += s.RequestCount
				sum.ProxiedRequestCount += s.ProxiedRequestCount
				got++
				mu.Unlock()
				return
			}
		}()
	}
	wg.Wait()
	if got < n {
		return stats.Stat{}, fmt.Errorf("%w: %d of %d (last error: %w)", errTooFewScraped, got, n, lastErr)
	}
	return sum, nil
}

func (c *collector) fetch(ctx context.Context, address string) (stats.Stat, error) {
	ctx, cancel := context.WithTimeout(ctx, ScrapeTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+stats.Path, nil)
	if err != nil {
		return stats.Stat{}, fmt.Errorf("scrape %s: %w", address, err)
	}
	req.Header.Set("Accept", stats.ContentType)
	resp, err := c.client.Do(req)
	if err != nil {
		return stats.Stat{}, fmt.Errorf("scrape %s: %w", address, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return stats.Stat{}, fmt.Errorf("scrape %s: status %s", address, resp.Status)
	}
	s, err := stats.Decode(resp.Body)
	if err != nil {
		return stats.Stat{}, fmt.Errorf("scrape %s: %w", address, err)
	}
	return s, nil
}

// sampleSize is how many of n instances are scraped: n itself up to 3,
// else ceil(n·X / (n + X − 1)) with X = 1.96² · 100 / 5² = 15.3664 (a
// 95 % confidence, 5 % error population-mean sample, Knative's).
func sampleSize(n int) int {
	if n <= 3 {
		return max(n, 0)
	}
	const x = 1.96 * 1.96 * 100 / (5 * 5)
	f := float64(n)
	return int(math.Ceil(f * x / (f + x - 1)))
}
