package queueproxy

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"sync"
	"sync/atomic"

	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/internal/probe"
	"github.com/zeroscale/zeroscale/revision"
)

// HealthPath is where a queue-proxy answers readiness: 200 "ready",
// 503 "not ready" or 503 "draining".
const HealthPath = hop.HealthPath

// prober records the app's readiness, checked by a probe.App; concurrent
// checks share one in-flight attempt.
type prober struct {
	app *probe.App

	ready     atomic.Bool
	readyOnce sync.Once
	readyC    chan struct{} // closed on the first success

	mu   sync.Mutex
	call *probeCall
}

type probeCall struct {
	done chan struct{}
	ok   bool
}

func newProber(addr string, p revision.Probe) *prober {
	return &prober{app: probe.NewApp(addr, p), readyC: make(chan struct{})}
}

// check probes now (joining an attempt already in flight) and records
// the result.
func (pr *prober) check(ctx context.Context) bool {
	pr.mu.Lock()
	c := pr.call
	if c == nil {
		c = &probeCall{done: make(chan struct{})}
		pr.call = c
		go func() {
			// Detached from the caller: other callers share the result.
			c.ok = pr.app.Check(context.WithoutCancel(ctx)) == nil
			pr.set(c.ok)
			pr.mu.Lock()
			pr.call = nil
			pr.mu.Unlock()
			close(c.done)
		}()
	}
	pr.mu.Unlock()
	select {
	case <-c.done:
		return c.ok
	case <-ctx.Done():
		return false
	}
}

func (pr *prober) set(ok bool) {
	pr.ready.Store(ok)
	if ok {
		pr.readyOnce.Do(func() { close(pr.readyC) })
	}
}

// probeLoop probes aggressively from the start until the app answers or
// StartupProbeLimit passes, then every Readiness.Period if one is set.
func (p *Proxy) probeLoop(ctx context.Context) {
	limit := p.clock.NewTimer(cmp.Or(p.opts.StartupProbeLimit, DefaultStartupProbeLimit))
	defer limit.Stop()
	for !p.prober.check(ctx) {
		wait := p.clock.NewTimer(revision.AggressiveProbePeriod)
		select {
		case <-ctx.Done():
			wait.Stop()
			return
		case <-limit.C():
			wait.Stop()
			p.log.Warn("app not ready after the startup probe limit; probing on demand",
				"upstream", p.opts.Upstream, "limit", cmp.Or(p.opts.StartupProbeLimit, DefaultStartupProbeLimit))
			return
		case <-wait.C():
		}
	}
	p.log.Info("app ready", "upstream", p.opts.Upstream, "after", p.clock.Since(p.stats.epoch))
	if p.opts.Readiness.Period == 0 {
		return
	}
	tick := p.clock.NewTicker(p.opts.Readiness.Period)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C():
			p.prober.check(ctx)
		}
	}
}

// serveHealth answers HealthPath and trusted probes: 503 "draining"
// once Drain was called, else 200 "ready" or 503 "not ready". With no
// Readiness.Period the app is probed on each health check (on demand);
// otherwise the last periodic result is used.
func (p *Proxy) serveHealth(w http.ResponseWriter, r *http.Request) {
	if p.draining.Load() {
		writeText(w, http.StatusServiceUnavailable, hop.HealthDraining)
		return
	}
	if !p.healthy(r.Context()) {
		writeText(w, http.StatusServiceUnavailable, hop.HealthNotReady)
		return
	}
	writeText(w, http.StatusOK, hop.HealthReady)
}

// errNotReady and errDraining are Probe's answers.
var (
	errNotReady = errors.New("queueproxy: app not ready")
	errDraining = errors.New("queueproxy: draining")
)

// Probe is the health check as a method, for hosts running the Proxy in
// process: nil when the app is ready, else an error saying "draining" or
// "not ready". Unlike a health check with Readiness.Period set, it always
// probes the app now (joining an attempt in flight) rather than trusting
// the last periodic result, so a host that restarted the app never gets
// the previous run's answer. Its result is recorded for Ready and later
// health checks.
func (p *Proxy) Probe(ctx context.Context) error {
	if p.draining.Load() {
		return errDraining
	}
	if !p.prober.check(ctx) {
		return errNotReady
	}
	return nil
}

// healthy probes on demand, or uses the last periodic result when
// Readiness.Period is set and the app was ready.
func (p *Proxy) healthy(ctx context.Context) bool {
	if p.opts.Readiness.Period > 0 && p.prober.ready.Load() {
		return true
	}
	return p.prober.check(ctx)
}

// Ready reports the last probe result.
func (p *Proxy) Ready() bool { return p.prober.ready.Load() }

// WaitReady blocks until the app first passed a probe (from Run or a
// health check) or ctx ends.
func (p *Proxy) WaitReady(ctx context.Context) error {
	select {
	case <-p.prober.readyC:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
