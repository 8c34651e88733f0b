package autoscaler

import (
	"context"
	"time"
)

// IdleChecker may veto scale to zero: before a revision that had no
// request for its scale-to-zero grace period goes to zero, the
// Multiscaler asks CheckIdle (in a goroutine of its own, at most one per
// revision at a time, bounded by Options.IdleCheckTimeout through ctx).
// Busy (false, nil) keeps the revision at its scale for one more grace
// period, after which it is asked again; an error counts as idle (an app
// that cannot answer must not stay up forever) and is passed to
// Options.OnIdleCheck. A request meanwhile makes the revision active and
// the pending answer is dropped.
//
// Open WebSockets, server-sent event streams and other long responses
// already count as activity: the queue-proxy counts such a request in
// flight for its whole life, so a revision with one is never idle and
// is not asked. The check is for work the requests do not show (a
// background job, a queue consumer).
type IdleChecker interface {
	CheckIdle(ctx context.Context, revision string) (idle bool, err error)
}

// IdleCheckerFunc adapts a function to IdleChecker.
type IdleCheckerFunc func(ctx context.Context, revision string) (bool, error)

// CheckIdle calls f(ctx, revision).
func (f IdleCheckerFunc) CheckIdle(ctx context.Context, revision string) (bool, error) {
	return f(ctx, revision)
}

// Bounds of Options.IdleCheckTimeout.
const (
	DefaultIdleCheckTimeout = 2 * time.Second
	MaxIdleCheckTimeout     = time.Minute
)

// idleAnswer is an idle check's outcome waiting for the next decision.
type idleAnswer int8

const (
	idleNone idleAnswer = iota
	idleYes
	idleBusy
)

// mayGoToZero gates the scale-to-zero of an inactive s whose grace is
// over: with no IdleChecker, or nothing running, at once; else once an
// idle check said idle (or failed). It returns toZero's (want, apply).
// m.mu is held.
func (m *Multiscaler) mayGoToZero(s *scaler, now time.Time) (int, bool) {
	if m.idle == nil || s.scale == 0 {
		return 0, true
	}
	if now.Before(s.vetoUntil) {
		return 0, false
	}
	switch s.idleAnswer {
	case idleYes:
		s.idleAnswer = idleNone
		return 0, true
	case idleBusy:
		s.idleAnswer = idleNone
		s.vetoUntil = now.Add(s.params.ScaleToZeroGracePeriod)
		return 0, false
	}
	if !s.idleAsking {
		s.idleAsking = true
		go m.askIdle(s.name, s.idleGen)
	}
	return 0, false
}

// askIdle runs one idle check of rev, bounded by the idle check timeout
// on the Multiscaler's clock, records its answer unless rev left the
// inactive state meanwhile (gen), and pokes rev for a decision.
func (m *Multiscaler) askIdle(rev string, gen uint64) {
	ctx, cancel := context.WithCancel(m.runCtx())
	t := m.clock.NewTimer(m.idleTimeout)
	go func() {
		select {
		case <-t.C():
			cancel()
		case <-ctx.Done():
		}
	}()
	idle, err := m.idle.CheckIdle(ctx, rev)
	t.Stop()
	cancel()
	if err != nil {
		idle = true
	}
	current := false
	_ = m.with(rev, func(s *scaler) {
		if s.idleGen != gen {
			return
		}
		current = true
		s.idleAsking = false
		s.idleAnswer = idleBusy
		if idle {
			s.idleAnswer = idleYes
		}
	})
	if m.onIdle != nil {
		m.onIdle(rev, idle, err)
	}
	if current {
		m.Poke(rev)
	}
}

// runCtx is Run's context (Background before Run), so a check in flight
// ends with the Multiscaler.
func (m *Multiscaler) runCtx() context.Context {
	if ctx := m.ctx.Load(); ctx != nil {
		return *ctx
	}
	return context.Background()
}
