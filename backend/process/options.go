package process

import (
	"fmt"
	"io"
	"log/slog"
	"time"

	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/engineopt"
)

// Defaults of Options.
const (
	// DefaultStopGrace is how long a stopped instance has between SIGTERM
	// and SIGKILL. Draining already waited for its requests, so this only
	// covers the app's own shutdown.
	DefaultStopGrace = 10 * time.Second
	// DefaultStartTimeout bounds how long a started process may take to
	// pass its readiness probe before it is killed and counted as a crash.
	DefaultStartTimeout = time.Minute
	// DefaultMinRestartBackoff and DefaultMaxRestartBackoff bound the
	// delay before a crashed instance is restarted; it doubles on every
	// crash in a row and resets once an instance stayed up for twice the
	// maximum (as Kubernetes' CrashLoopBackOff does, scaled down for
	// local processes).
	DefaultMinRestartBackoff = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 30 * time.Second
	// DefaultMaxInstances bounds the instances of one revision.
	DefaultMaxInstances = 100
	// DefaultOutputTailLines is how many of an instance's last output
	// lines Status keeps.
	DefaultOutputTailLines = 20
	// outputFlushTimeout bounds the wait for an exited instance's output
	// pipe to reach EOF (a grandchild that left the process group may
	// hold it open).
	outputFlushTimeout = time.Second
)

// Options configure a Backend. The zero value is usable: no drain hook,
// output discarded (but kept for Status), no proxy, the real clock.
type Options struct {
	// Drain is called before an instance is stopped for any reason other
	// than a crash (scale-down, Remove, Close), after the instance was
	// published as Draining; the instance is stopped once it returns or
	// DrainTimeout passes. The host typically waits there until its
	// activator has no request in flight to the instance. nil = no hook.
	Drain backend.DrainFunc
	// DrainTimeout bounds Drain plus the fronting proxy's drain. 0 means
	// the revision's request timeout (Spec.Timeouts.Request, 300 s by
	// default), like Knative's terminationGracePeriodSeconds, so no
	// request that could still succeed is cut.
	DrainTimeout time.Duration
	// StopGrace is the time between SIGTERM and SIGKILL to the
	// instance's process group. 0 means DefaultStopGrace.
	StopGrace time.Duration
	// StartTimeout bounds the time from process start to passing the
	// readiness probe; an instance that misses it is killed and restarted
	// with backoff. 0 means DefaultStartTimeout.
	StartTimeout time.Duration
	// MinRestartBackoff and MaxRestartBackoff bound the delay before a
	// crashed instance is restarted. 0 means the defaults; Min ≤ Max.
	MinRestartBackoff time.Duration
	MaxRestartBackoff time.Duration
	// MaxInstances bounds Scale's n per revision. 0 means
	// DefaultMaxInstances.
	MaxInstances int

	// Output receives every line an instance writes to stdout or stderr,
	// as "<revision>/<instance-id>: <line>\n", one Write per line. Writes
	// are serialised and synchronous: a blocking Output stalls the
	// instances' output (as a terminal would). nil = discard.
	Output io.Writer
	// OutputFunc, when set, is also called with every line (without its
	// newline). Calls for one instance are sequential; calls for
	// different instances may be concurrent.
	OutputFunc func(revision, instance, line string)
	// OutputTailLines is how many last lines per instance Status keeps
	// (each at most 4 KiB; longer lines are split). 0 means
	// DefaultOutputTailLines.
	OutputTailLines int
	// Environ is the environment every instance starts from, before the
	// revision's Env and PORT, K_SERVICE, K_CONFIGURATION, K_REVISION are
	// added. nil means the host's environment (as os/exec does); use an
	// empty non-nil slice for none.
	Environ []string

	// Proxy, when set, fronts every instance with an in-process proxy
	// (normally a queueproxy) on its own loopback listener: the
	// instance's Address is then the proxy's, readiness is the proxy's
	// verdict (see Prober), and the proxy drains after
	// Drain and before SIGTERM. nil = instances are reached directly.
	Proxy ProxyFunc

	// Logger receives lifecycle events (start, ready, crash, stop).
	// nil = discard.
	Logger *slog.Logger
	// Clock drives probing, timeouts, grace periods and backoff.
	// nil = the real clock.
	Clock clock.WithTickerAndDelayedExecution
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if err := engineopt.Durations("process",
		engineopt.Duration{Name: "DrainTimeout", Value: &o.DrainTimeout},
		engineopt.Duration{Name: "StopGrace", Value: &o.StopGrace, Default: DefaultStopGrace},
		engineopt.Duration{Name: "StartTimeout", Value: &o.StartTimeout, Default: DefaultStartTimeout},
		engineopt.Duration{Name: "MinRestartBackoff", Value: &o.MinRestartBackoff, Default: DefaultMinRestartBackoff},
		engineopt.Duration{Name: "MaxRestartBackoff", Value: &o.MaxRestartBackoff, Default: DefaultMaxRestartBackoff},
	); err != nil {
		return o, err
	}
	if err := engineopt.Backoff("process", o.MinRestartBackoff, o.MaxRestartBackoff); err != nil {
		return o, err
	}
	if err := engineopt.Count("process", "MaxInstances", &o.MaxInstances, DefaultMaxInstances); err != nil {
		return o, err
	}
	if o.OutputTailLines < 0 {
		return o, fmt.Errorf("process: Options.OutputTailLines = %d: want ≥ 0 (0 = %d)", o.OutputTailLines, DefaultOutputTailLines)
	}
	if o.OutputTailLines == 0 {
		o.OutputTailLines = DefaultOutputTailLines
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o, nil
}
