package activator

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// startupSamples is how many recent instance start-up times the average
// that sets the default wait deadline is taken over.
const startupSamples = 10

// slot is one reserved request slot on an instance.
type slot struct {
	id, addr string
	local    http.Handler // the instance's in-process queue-proxy, if any
}

// waiter is one held request. Its fields are guarded by the revision's
// lock; ready is closed once done is set by anyone but the waiter itself.
type waiter struct {
	bytes   int64
	exclude string
	cold    bool // held while the revision had no ready instance
	elem    *list.Element
	ready   chan struct{}
	done    bool
	slot    slot
	err     error
}

// admission is how a request got its slot.
type admission struct {
	slot      slot
	held      bool
	cold      bool
	since     time.Time // when it was held
	triggered bool      // its arrival or hold sent an immediate demand report
}

// instanceStart is what the engine said of an instance's start: the
// middle milestones of a cold start.
type instanceStart struct {
	started, listening time.Time
}

// coldMilestones returns, for a cold admission to the instance of id,
// when the scale from zero was decided and the engine's start
// milestones (zero when unknown).
func (t *throttler) coldMilestones(id string) (decided time.Time, st instanceStart) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.decided, t.starts[id]
}

// acquireReq describes one attempt to get a slot.
type acquireReq struct {
	bytes   int64  // held-bytes charge (headers + declared body)
	exclude string // instance not to use (a retry)
	front   bool   // hold ahead of everyone (a retry already waited)
	arrival bool   // first attempt: counts as a request in stats
	onHold  func() // called once the request is held, before it waits
}

// throttler is one revision's instance slots, hold queue and demand
// accounting. Everything is guarded by mu: one lock gives the policy a
// consistent view of every instance's load and keeps the FIFO queue and
// the slots in step, which per-instance breakers could not.
type throttler struct {
	name     string
	revValue []string // {name}, the RevisionHeader value of its requests
	h        *Handler
	m        revMetrics
	ok       atomic.Pointer[okSeries] // created by the first 200, see Handler.observe

	mu             sync.Mutex
	cc             int
	requestTimeout time.Duration
	policy         Policy
	cands          []Candidate    // serving (Instance.Serving), by Address
	index          map[string]int // ID -> position in cands
	orphans        map[string]int // in flight on instances no longer candidates
	queue          list.List      // of *waiter, FIFO
	heldBytes      int64
	inFlight       int
	coldEpisode    bool                     // a cold start is being waited for
	frozen         bool                     // the last snapshot has a Frozen instance: a wait is for a thaw
	known          map[string]bool          // instance ID (in the last snapshot) -> was ever ready
	starts         map[string]instanceStart // instance ID (in the last snapshot) -> its start, if watched
	decided        time.Time                // the last scale from zero decided (Handler.ScaleFromZero)
	snapshots      int                      // instance snapshots received
	startups       [startupSamples]time.Duration
	nStartups      int
	removed        bool
	failing        error // SetFailing's reason; acts while cands is empty
	acct           accounting
	transport      http.RoundTripper
	insts          []backend.Instance        // the last snapshot's valid instances
	probes         map[string]*instanceProbe // instance ID -> the activator's own probe

	idle map[string]*idleWait // instance ID -> WaitInstanceIdle callers
}

// idleWait is the instance-idle signal the WaitInstanceIdle callers for
// one instance share: ch is closed once the instance is idle; waiters
// counts the callers so that the last one to give up removes the entry.
type idleWait struct {
	ch      chan struct{}
	waiters int
}

// accounting is the time-weighted demand the activator reports for one
// revision (Knative's concurrency reporter entry).
type accounting struct {
	active       bool      // an entry exists; dropped after a zero period
	area         float64   // request-seconds since the period began
	last         time.Time // last change of concurrency
	arrivals     int
	firstRequest int  // the arrival already sent in the immediate report
	reported     bool // an immediate report went out this period
}

func (t *throttler) concurrencyLocked() int { return t.queue.Len() + t.inFlight }

// touchLocked integrates concurrency up to now; call it before every
// change of queue length or in-flight count.
func (t *throttler) touchLocked(now time.Time) {
	if t.acct.active {
		t.acct.area += float64(t.concurrencyLocked()) * now.Sub(t.acct.last).Seconds()
	}
	t.acct.last = now
}

// arriveLocked counts a request; on the first request to an idle revision
// it returns Knative's immediate {concurrency 1, count 1} report.
func (t *throttler) arriveLocked(now time.Time) *stats.Stat {
	if t.h.reporter == nil {
		return nil
	}
	if t.acct.active {
		t.touchLocked(now)
		t.acct.arrivals++
		return nil
	}
	t.acct = accounting{active: true, last: now, arrivals: 1, firstRequest: 1, reported: true}
	return &stats.Stat{Instance: t.h.name, AverageConcurrency: 1, RequestCount: 1, Timestamp: now}
}

// periodStat ends a reporting period of length interval at now.
func (t *throttler) periodStat(now time.Time, interval time.Duration) (stats.Stat, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.acct.active || interval <= 0 {
		return stats.Stat{}, false
	}
	t.touchLocked(now)
	secs := interval.Seconds()
	avg := t.acct.area / secs
	// The request of the immediate report is subtracted from both the
	// count and the concurrency (floored at 0; the period's average may
	// be below the 1 reported), as Knative's concurrency reporter does.
	first := float64(t.acct.firstRequest)
	s := stats.Stat{
		Instance:           t.h.name,
		AverageConcurrency: max(avg-first, 0),
		RequestCount:       (float64(t.acct.arrivals) - first) / secs,
		Timestamp:          now,
	}
	t.acct.area, t.acct.arrivals, t.acct.firstRequest, t.acct.reported = 0, 0, 0, false
	if avg == 0 && t.concurrencyLocked() == 0 {
		t.acct.active = false
	}
	return s, true
}

// acquire returns a slot on a ready instance, holding the request until
// one frees, the wait deadline passes, ctx is done or the revision is
// removed.
func (t *throttler) acquire(ctx context.Context, req acquireReq) (admission, error) {
	clk := t.h.clock
	now := clk.Now()
	t.mu.Lock()
	if t.removed {
		t.mu.Unlock()
		return admission{}, fmt.Errorf("revision %q: %w", t.name, ErrRevisionRemoved)
	}
	var imm *stats.Stat
	if req.arrival {
		imm = t.arriveLocked(now)
	}
	if t.queue.Len() == 0 {
		if i := t.pickLocked(req.exclude); i >= 0 {
			s := t.reserveLocked(i, now)
			t.mu.Unlock()
			t.h.send(t.name, imm)
			return admission{slot: s}, nil
		}
	}
	if err := t.failingLocked(); err != nil {
		t.touchLocked(now)
		t.mu.Unlock()
		t.h.send(t.name, imm)
		return admission{}, err
	}
	if n := t.queue.Len(); n >= t.h.maxHeld || (n > 0 && req.bytes > t.h.maxHeldBytes-t.heldBytes) {
		heldBytes := t.heldBytes
		t.mu.Unlock()
		t.h.send(t.name, imm)
		return admission{}, fmt.Errorf("revision %q: %w (%d requests, %d of %d bytes held)",
			t.name, ErrQueueFull, n, heldBytes, t.h.maxHeldBytes)
	}
	t.touchLocked(now)
	// Waiting for a frozen instance's thaw is not a cold start: nothing
	// starts, and it has none of a start's phases.
	w := &waiter{bytes: req.bytes, exclude: req.exclude, cold: len(t.cands) == 0 && !t.frozen, ready: make(chan struct{})}
	if req.front {
		w.elem = t.queue.PushFront(w)
	} else {
		w.elem = t.queue.PushBack(w)
	}
	t.heldBytes += req.bytes
	if w.cold && !t.coldEpisode {
		t.coldEpisode = true
		t.m.coldStarts.Inc()
	}
	if imm == nil && t.queue.Len() == 1 && t.acct.active && !t.acct.reported {
		// A hold episode begins: report the demand now rather than at the
		// end of the period, so the autoscaler is poked at once.
		t.acct.reported = true
		imm = &stats.Stat{Instance: t.h.name, AverageConcurrency: float64(t.concurrencyLocked()), Timestamp: now}
	}
	t.dispatchLocked(now)
	timeout, isRequestTimeout := t.holdLimitLocked()
	var timer interface {
		C() <-chan time.Time
		Stop() bool
	}
	if !w.done {
		// Created under the lock so that a fake clock stepped by someone
		// who saw the request held always fires it.
		timer = clk.NewTimer(timeout)
	}
	t.mu.Unlock()
	t.h.send(t.name, imm)
	adm := admission{held: true, cold: w.cold, since: now, triggered: imm != nil}

	if timer != nil {
		if req.onHold != nil {
			req.onHold()
		}
		select {
		case <-w.ready:
		case <-ctx.Done():
		case <-timer.C():
		}
		timer.Stop()
	}
	t.mu.Lock()
	if !w.done {
		t.touchLocked(clk.Now())
		t.queue.Remove(w.elem)
		t.heldBytes -= w.bytes
		t.m.held.Set(float64(t.queue.Len()))
		w.done = true
		what := "no instance had a free slot"
		if len(t.cands) == 0 {
			what = "no instance became ready"
		}
		switch cause := context.Cause(ctx); {
		case errors.Is(cause, context.DeadlineExceeded):
			// A deadline the host set (a middleware, http.TimeoutHandler).
			w.err = fmt.Errorf("revision %q: deadline exceeded while held: %s: %w", t.name, what, cause)
		case cause != nil:
			w.err = fmt.Errorf("revision %q: request canceled while held: %w", t.name, cause)
		case isRequestTimeout:
			w.err = fmt.Errorf("revision %q: %w while held: %s within %s", t.name, ErrRequestTimeout, what, timeout)
		default:
			w.err = fmt.Errorf("revision %q: %w: %s within %s", t.name, ErrWaitTimeout, what, timeout)
		}
	}
	t.mu.Unlock()
	if w.err != nil {
		return adm, w.err
	}
	if err := ctx.Err(); err != nil {
		// The client left just as a slot came: give it back at once.
		t.release(w.slot)
		return adm, err
	}
	adm.slot = w.slot
	return adm, nil
}

// pickLocked asks the policy for an available candidate, hiding exclude.
func (t *throttler) pickLocked(exclude string) int {
	if len(t.cands) == 0 {
		return -1
	}
	j, hide := t.index[exclude]
	if hide {
		t.cands[j].excluded = true
	}
	i := t.policy.Pick(t.cands)
	if hide {
		t.cands[j].excluded = false
	}
	if i < 0 || i >= len(t.cands) || i == j && hide || !t.cands[i].Available() {
		return -1
	}
	return i
}

func (t *throttler) reserveLocked(i int, now time.Time) slot {
	t.touchLocked(now)
	t.cands[i].InFlight++
	t.inFlight++
	return slot{id: t.cands[i].ID, addr: t.cands[i].Address, local: t.cands[i].local}
}

// dispatchLocked hands free slots to held requests in FIFO order. It
// stops at the first request that cannot be served by any instance; a
// request that only excludes one instance lets those behind it pass.
// With nothing held (every release on an unsaturated revision) it does
// nothing, not even the gauge store.
func (t *throttler) dispatchLocked(now time.Time) {
	if t.queue.Len() == 0 {
		return
	}
	// Integrate the held time before the queue shrinks: reserveLocked
	// integrates with the queue already one shorter.
	t.touchLocked(now)
	for e := t.queue.Front(); e != nil; {
		next := e.Next()
		w := e.Value.(*waiter)
		i := t.pickLocked(w.exclude)
		if i < 0 {
			if w.exclude == "" {
				break
			}
			e = next
			continue
		}
		t.queue.Remove(e)
		t.heldBytes -= w.bytes
		w.slot = t.reserveLocked(i, now)
		w.done = true
		close(w.ready)
		e = next
	}
	t.m.held.Set(float64(t.queue.Len()))
}

// release frees a slot and passes it on to the next held request.
func (t *throttler) release(s slot) {
	now := t.h.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.touchLocked(now)
	t.inFlight--
	if i, ok := t.index[s.id]; ok {
		t.cands[i].InFlight--
	} else if n := t.orphans[s.id]; n > 1 {
		t.orphans[s.id] = n - 1
	} else {
		delete(t.orphans, s.id)
	}
	t.dispatchLocked(now)
	t.signalIdleLocked()
}

// busyLocked reports whether the activator may still pick instance id
// for a new request or holds a slot on it.
func (t *throttler) busyLocked(id string) bool {
	if i, ok := t.index[id]; ok {
		return !t.removed || t.cands[i].InFlight > 0
	}
	return t.orphans[id] > 0
}

// signalIdleLocked wakes the WaitInstanceIdle callers of every instance
// that became idle. The map holds only instances being drained, so this
// is cheap on the release path.
func (t *throttler) signalIdleLocked() {
	for id, w := range t.idle {
		if !t.busyLocked(id) {
			close(w.ch)
			delete(t.idle, id)
		}
	}
}

// waitIdle implements Handler.WaitInstanceIdle for one revision.
func (t *throttler) waitIdle(ctx context.Context, id string) error {
	t.mu.Lock()
	if !t.busyLocked(id) {
		t.mu.Unlock()
		return nil
	}
	w := t.idle[id]
	if w == nil {
		if t.idle == nil {
			t.idle = make(map[string]*idleWait)
		}
		w = &idleWait{ch: make(chan struct{})}
		t.idle[id] = w
	}
	w.waiters++
	t.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	select {
	case <-w.ch: // signalled meanwhile: the entry is gone already
		return nil
	default:
	}
	if w.waiters--; w.waiters == 0 {
		delete(t.idle, id)
	}
	return ctx.Err()
}

// setConcurrency applies a revision's container concurrency and request
// timeout, replacing the policy when the concurrency changed.
func (t *throttler) setConcurrency(cc int, requestTimeout time.Duration, policy func(int) Policy) {
	now := t.h.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.requestTimeout = requestTimeout
	if t.policy != nil && cc == t.cc {
		return
	}
	t.cc = cc
	t.policy = policy(cc)
	if t.policy == nil {
		t.policy = DefaultPolicy(cc)
	}
	for i := range t.cands {
		t.cands[i].Capacity = cc
	}
	t.dispatchLocked(now)
}

// update replaces the revision's instances with a backend snapshot.
func (t *throttler) update(insts []backend.Instance) {
	now := t.h.clock.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.snapshots++
	known := make(map[string]bool, len(insts))
	starts := make(map[string]instanceStart, len(t.starts))
	valid := make([]backend.Instance, 0, len(insts))
	t.frozen = false
	for _, in := range insts {
		if _, dup := known[in.ID]; dup {
			continue
		}
		if in.Revision != "" && in.Revision != t.name || in.Address == "" || in.ID == "" {
			t.h.log.Warn("activator: ignoring instance", "revision", t.name,
				"instance", in.ID, "instanceRevision", in.Revision, "address", in.Address)
			continue
		}
		valid = append(valid, in)
		t.frozen = t.frozen || in.Frozen
		wasReady, seen := t.known[in.ID]
		known[in.ID] = wasReady || in.Ready
		// Only a start the activator watched is a start-up sample: an
		// instance already ready in the first snapshot may be hours old.
		// Only the first Ready of an ID ends a start: a restart is a new
		// instance (see backend.Backend), so Ready coming back for the
		// same ID is a readiness probe that failed and passed again, and
		// Started is long past.
		if st, ok := t.starts[in.ID]; ok {
			starts[in.ID] = st
		}
		if in.Ready && !wasReady && (seen || t.snapshots > 1) && !in.Started.IsZero() {
			starts[in.ID] = instanceStart{started: in.Started, listening: in.Listening}
			if d := now.Sub(in.Started); d >= 0 {
				// Capped: a wait never exceeds the request timeout, and
				// the sum of the samples must not overflow.
				t.startups[t.nStartups%startupSamples] = min(d, revision.MaxRequestTimeout)
				t.nStartups++
			}
		}
	}
	t.known, t.starts = known, starts
	t.insts = valid
	t.syncProbesLocked()
	t.rebuildLocked(now)
}

// rebuildLocked makes the candidates from the last snapshot: the
// instances it says are serving, and those not yet ready that passed the
// activator's own probe.
func (t *throttler) rebuildLocked(now time.Time) {
	cands := make([]Candidate, 0, len(t.insts))
	for _, in := range t.insts {
		if in.Serving() || t.probePassedLocked(in) {
			cands = append(cands, Candidate{ID: in.ID, Address: in.Address, Capacity: t.cc, local: in.Handler})
		}
	}
	slices.SortFunc(cands, func(a, b Candidate) int {
		return cmp.Or(cmp.Compare(a.Address, b.Address), cmp.Compare(a.ID, b.ID))
	})
	index := make(map[string]int, len(cands))
	for i := range cands {
		id := cands[i].ID
		index[id] = i
		if j, ok := t.index[id]; ok {
			cands[i].InFlight = t.cands[j].InFlight
		} else if n, ok := t.orphans[id]; ok {
			cands[i].InFlight = n
			delete(t.orphans, id)
		}
	}
	for _, c := range t.cands {
		if _, ok := index[c.ID]; !ok && c.InFlight > 0 {
			if t.orphans == nil {
				t.orphans = make(map[string]int)
			}
			t.orphans[c.ID] = c.InFlight
		}
	}
	t.cands, t.index = cands, index
	if len(cands) > 0 {
		t.coldEpisode = false
	}
	t.dispatchLocked(now)
	t.signalIdleLocked()
}

// failingLocked is the error a request gets at once, if SetFailing's
// reason applies: set, and no instance serving.
func (t *throttler) failingLocked() error {
	if t.failing == nil || len(t.cands) > 0 {
		return nil
	}
	return fmt.Errorf("revision %q: %w: %w", t.name, ErrRevisionFailing, t.failing)
}

// setFailing records reason and answers the held requests if it applies.
func (t *throttler) setFailing(reason error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failing = reason
	err := t.failingLocked()
	if err == nil {
		return
	}
	t.touchLocked(t.h.clock.Now())
	for e := t.queue.Front(); e != nil; e = e.Next() {
		w := e.Value.(*waiter)
		w.err = err
		w.done = true
		close(w.ready)
	}
	t.queue.Init()
	t.heldBytes = 0
	t.m.held.Set(0)
}

// remove rejects every held request and refuses new ones.
func (t *throttler) remove() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removed = true
	t.stopProbesLocked()
	t.touchLocked(t.h.clock.Now())
	for e := t.queue.Front(); e != nil; e = e.Next() {
		w := e.Value.(*waiter)
		w.err = fmt.Errorf("revision %q: %w while the request was held", t.name, ErrRevisionRemoved)
		w.done = true
		close(w.ready)
	}
	t.queue.Init()
	t.heldBytes = 0
	t.signalIdleLocked()
}

// averageStartupLocked is the mean of the recent observed start-up times,
// 0 before the first one.
func (t *throttler) averageStartupLocked() time.Duration {
	n := min(t.nStartups, startupSamples)
	if n == 0 {
		return 0
	}
	var sum time.Duration
	for _, d := range t.startups[:n] {
		sum += d
	}
	return sum / time.Duration(n)
}

// waitTimeoutLocked is how long a request may be held: the configured
// wait, else Cloud Run's max(3.5 × average start-up, 10 s); never longer
// than the revision's request timeout.
func (t *throttler) waitTimeoutLocked() time.Duration {
	d, _ := t.holdLimitLocked()
	return d
}

// holdLimitLocked is waitTimeoutLocked, and whether it is the revision's
// request timeout (the hold deadline is not shorter): a request held
// that long gets Knative's 504, not the hold deadline's 503.
func (t *throttler) holdLimitLocked() (time.Duration, bool) {
	d := t.h.waitTimeout
	if d <= 0 {
		d = max(MinWait, time.Duration(StartupWaitFactor*float64(t.averageStartupLocked())))
	}
	if t.requestTimeout > 0 && d >= t.requestTimeout {
		return t.requestTimeout, true
	}
	return d, false
}

// retryAfter is a hint for rejected clients: the average start-up time,
// at least one second.
func (t *throttler) retryAfter() time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	return max(time.Second, t.averageStartupLocked())
}

// Load is a snapshot of one revision's state in the activator.
type Load struct {
	// Held is the number of requests waiting for a slot.
	Held int
	// InFlight is the number of requests being proxied.
	InFlight int
	// Serving is the number of instances that take requests
	// (backend.Instance.Serving).
	Serving int
	// FreeSlots is the number of requests the serving instances can take
	// now; -1 means unlimited (container concurrency 0 and at least one
	// serving instance).
	FreeSlots int
	// WaitTimeout is the current wait deadline for a newly held request.
	WaitTimeout time.Duration
}

func (t *throttler) load() Load {
	t.mu.Lock()
	defer t.mu.Unlock()
	l := Load{Held: t.queue.Len(), InFlight: t.inFlight, Serving: len(t.cands), WaitTimeout: t.waitTimeoutLocked()}
	for _, c := range t.cands {
		switch {
		case c.Capacity == 0:
			l.FreeSlots = -1
		case l.FreeSlots >= 0 && c.InFlight < c.Capacity:
			l.FreeSlots += c.Capacity - c.InFlight
		}
	}
	return l
}
