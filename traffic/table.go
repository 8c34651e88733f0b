package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/utils/clock"
)

// Table routes requests for many routes on one listener, by host: each
// route's own host and its tags' hosts. Its zero value is an empty table
// ready to use. Lookups are lock-free and safe concurrently with Add,
// Remove and route updates.
//
// Two routes may produce the same host (a tag host "v2-shop" and a route
// named "v2-shop" in the same namespace). A route's own host always
// wins, and Add refuses a route whose own host is taken; between two tag
// hosts, the route added first wins. The loser is logged and unreachable
// on that host.
type Table struct {
	// Clock drives Run; nil means the real clock.
	Clock clock.Clock
	// Logger gets host conflicts; nil discards.
	Logger *slog.Logger

	mu     sync.Mutex
	routes []*Route // in the order added
	wake   chan struct{}
	hosts  atomic.Pointer[map[string]*Route]

	armed func(next time.Time) // test hook: Run armed its timer for next
}

// Add makes t route r's hosts. It fails if r is already in t or another
// route has the same host.
func (t *Table) Add(r *Route) error {
	if r == nil {
		return errors.New("traffic: Table.Add: nil route")
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, o := range t.routes {
		if o == r {
			return fmt.Errorf("traffic: route %s/%s is already in the table", r.namespace, r.name)
		}
		if o.host == r.host {
			return fmt.Errorf("traffic: route %s/%s: host %q is already routed to %s/%s",
				r.namespace, r.name, r.host, o.namespace, o.name)
		}
	}
	t.routes = append(t.routes, r)
	r.tablesMu.Lock()
	r.tables = append(r.tables, t)
	r.tablesMu.Unlock()
	t.reindex()
	t.signal()
	return nil
}

// Remove stops routing r's hosts and reports whether r was in t.
func (t *Table) Remove(r *Route) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	i := slices.Index(t.routes, r)
	if i < 0 {
		return false
	}
	t.routes = slices.Delete(t.routes, i, i+1)
	r.tablesMu.Lock()
	r.tables = slices.DeleteFunc(r.tables, func(o *Table) bool { return o == t })
	r.tablesMu.Unlock()
	t.reindex()
	return true
}

// Route returns the route called name in namespace ("" means
// DefaultNamespace).
func (t *Table) Route(namespace, name string) (*Route, bool) {
	if namespace == "" {
		namespace = DefaultNamespace
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range t.routes {
		if r.namespace == namespace && r.name == name {
			return r, true
		}
	}
	return nil, false
}

// Routes returns the routes in t, in the order added, in a new slice.
func (t *Table) Routes() []*Route {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.routes)
}

// PickRevision returns the revision that should serve req: the route
// whose host (own or tag, case and port ignored) req names decides, as
// Route.PickRevision. The error wraps ErrNoRoute for an unknown host, a
// route without traffic yet, and a cluster-local route asked from
// outside. PickRevision does not allocate.
func (t *Table) PickRevision(req *http.Request) (string, error) {
	var buf [maxHost]byte
	host := hostKey(buf[:0], req)
	if m := t.hosts.Load(); m != nil {
		if r, ok := (*m)[string(host)]; ok {
			return r.pick(req, host, true)
		}
	}
	return "", fmt.Errorf("%w: host %q", ErrNoRoute, string(host))
}

// changed is called by a route of t after it published new traffic.
func (t *Table) changed(hostsChanged bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if hostsChanged {
		t.reindex()
	}
	t.signal()
}

// reindex rebuilds the host index: own hosts first, so they win, then
// tag hosts in the order the routes were added. t.mu is held.
func (t *Table) reindex() {
	m := make(map[string]*Route, len(t.routes))
	for _, r := range t.routes {
		m[r.host] = r
	}
	for _, r := range t.routes {
		s := r.current.Load()
		if s == nil {
			continue
		}
		for tag, h := range s.hosts {
			if o, taken := m[h]; taken && o != r {
				t.logger().Warn("tag host already routed; tag unreachable on it", "host", h,
					"route", r.namespace+"/"+r.name, "tag", tag, "owner", o.namespace+"/"+o.name)
				continue
			}
			m[h] = r
		}
	}
	t.hosts.Store(&m)
}

func (t *Table) logger() *slog.Logger {
	if t.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return t.Logger
}

// signal wakes Run to reschedule. t.mu is held.
func (t *Table) signal() {
	select {
	case t.wakeChan() <- struct{}{}:
	default:
	}
}

// wakeChan returns the channel that wakes Run, which holds at most one
// pending wake-up. t.mu is held.
func (t *Table) wakeChan() chan struct{} {
	if t.wake == nil {
		t.wake = make(chan struct{}, 1)
	}
	return t.wake
}

// Step advances the gradual rollouts of every route at now and returns
// when it should be called next, or the zero time if no rollout is in
// progress.
func (t *Table) Step(now time.Time) time.Time {
	var next time.Time
	for _, r := range t.Routes() {
		// No wake-up of t for its own steps: it is about to reschedule.
		if n := r.step(now, false); !n.IsZero() && (next.IsZero() || n.Before(next)) {
			next = n
		}
	}
	return next
}

// Run drives the gradual rollouts of t's routes until ctx is done, with
// one goroutine and one timer for the whole table: it calls Step when
// the earliest step is due, and again whenever a route's traffic
// changes. It returns ctx's error. Call it once per table.
func (t *Table) Run(ctx context.Context) error {
	clk := t.Clock
	if clk == nil {
		clk = clock.RealClock{}
	}
	t.mu.Lock()
	wake := t.wakeChan()
	t.mu.Unlock()
	for {
		// This Step sees every change made so far; only later ones need
		// another round.
		select {
		case <-wake:
		default:
		}
		now := clk.Now()
		next := t.Step(now)
		var (
			timer clock.Timer
			fire  <-chan time.Time
		)
		if !next.IsZero() {
			timer = clk.NewTimer(next.Sub(now))
			fire = timer.C()
		}
		if t.armed != nil {
			t.armed(next)
		}
		select {
		case <-ctx.Done():
			if timer != nil {
				timer.Stop()
			}
			return ctx.Err()
		case <-wake:
		case <-fire:
		}
		if timer != nil {
			timer.Stop()
		}
	}
}
