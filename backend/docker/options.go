package docker

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/moby/moby/client"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/engineopt"
)

// Defaults of Options.
const (
	// DefaultStopGrace is the time between SIGTERM and SIGKILL that
	// ContainerStop gives a stopped container. Draining already waited
	// for its requests, so this only covers the app's own shutdown.
	DefaultStopGrace = 10 * time.Second
	// DefaultStartTimeout bounds the time from ContainerCreate to the
	// first passed readiness probe; a container that misses it is
	// removed and counted as a crash.
	DefaultStartTimeout = time.Minute
	// DefaultMinRestartBackoff and DefaultMaxRestartBackoff bound the
	// delay before a crashed instance is replaced; it doubles with every
	// crash in a row and resets once an instance stayed up for twice the
	// maximum (Kubernetes' CrashLoopBackOff, scaled down).
	DefaultMinRestartBackoff = 100 * time.Millisecond
	DefaultMaxRestartBackoff = 30 * time.Second
	// DefaultMaxInstances bounds the instances of one revision.
	DefaultMaxInstances = 100
	// DefaultLogTailLines is how many of a crashed container's last log
	// lines Status keeps.
	DefaultLogTailLines = 20
	// MaxLogTailLines bounds Options.LogTailLines.
	MaxLogTailLines = 1000
)

// Labels every container of this backend carries. The identity label
// is how a backend finds (and removes) what an earlier run with the same
// Options.Identity left behind, and how it keeps its hands off every
// other container on the engine.
const (
	LabelIdentity = "dev.zeroscale.identity"
	LabelRevision = "dev.zeroscale.revision"
	LabelInstance = "dev.zeroscale.instance"
	LabelImage    = "dev.zeroscale.image" // the image reference as the Spec named it
	LabelKind     = "dev.zeroscale.kind"  // "standard" or "reserved" (backend.Instance.Kind)
)

// Options configure a Backend. The zero value is usable: the engine from
// the environment (DOCKER_HOST, else /var/run/docker.sock), a
// per-process identity, no drain hook, no proxy, the real clock.
type Options struct {
	// Client talks to the engine. nil means client.New(client.FromEnv)
	// (DOCKER_HOST, DOCKER_API_VERSION, DOCKER_CERT_PATH,
	// DOCKER_TLS_VERIFY), which the Backend closes in Close; a Client
	// given here is not closed.
	Client *client.Client

	// Identity names this host in the LabelIdentity label of every
	// container it creates. At New the Backend removes every container
	// with its identity (what a killed earlier run left behind), and it
	// never touches a container with another identity. Give a stable
	// value (e.g. "myhost-frontdoor") so a restarted host cleans up after
	// its previous run; two live Backends must never share one. "" means
	// "<hostname>-<pid>", unique per process but not across restarts.
	// At most 128 bytes of [a-zA-Z0-9_.-].
	Identity string

	// Drain is called before an instance is stopped for any reason other
	// than a crash (scale-down, Remove, Close), after the instance was
	// published as Draining; the container is stopped once it returns or
	// DrainTimeout passes. nil = no hook.
	Drain backend.DrainFunc
	// DrainTimeout bounds Drain plus the fronting proxy's drain. 0 means
	// the revision's request timeout (Spec.Timeouts.Request, 300 s by
	// default), like Knative's terminationGracePeriodSeconds.
	DrainTimeout time.Duration
	// StopGrace is ContainerStop's timeout between SIGTERM and SIGKILL,
	// rounded up to whole seconds (the engine's unit). 0 means
	// DefaultStopGrace.
	StopGrace time.Duration
	// StartTimeout bounds the time from ContainerCreate to ready. 0 means
	// DefaultStartTimeout.
	StartTimeout time.Duration
	// MinRestartBackoff and MaxRestartBackoff bound the delay before a
	// crashed instance is replaced. 0 means the defaults; Min ≤ Max.
	MinRestartBackoff time.Duration
	MaxRestartBackoff time.Duration
	// MaxInstances bounds Scale's n per revision (MaxInstances reports
	// it). 0 means DefaultMaxInstances.
	MaxInstances int
	// LogTailLines is how many last log lines of a crashed container
	// Status keeps (each at most 4 KiB). 0 means DefaultLogTailLines; at
	// most MaxLogTailLines.
	LogTailLines int

	// Proxy, when set, fronts every instance with an in-process proxy
	// (normally a queueproxy) on its own loopback listener: the
	// instance's Address is the proxy's, readiness is the proxy's verdict
	// once the app answers on its published port, and the proxy drains
	// after Drain and before ContainerStop. nil = instances are reached
	// at their published port directly.
	Proxy ProxyFunc

	// Output, when set, receives every line a container writes to
	// stdout or stderr, followed through the engine's log stream, as
	// "<revision>/<instance-id>: <line>\n", one Write per line (lines
	// longer than 4 KiB are split). Writes are serialised and
	// synchronous: a blocking Output stalls the following (not the
	// container, whose output the engine keeps). nil (and no OutputFunc)
	// = not followed; `docker logs` still has it.
	Output io.Writer
	// OutputFunc, when set, is also called with every line (without its
	// newline). Calls for one instance are sequential.
	OutputFunc func(revision, instance, line string)

	// Logger receives lifecycle events (create, ready, crash, stop).
	// nil = discard.
	Logger *slog.Logger
	// Clock drives probing, timeouts, drains and backoff. nil = the real
	// clock.
	Clock clock.WithTickerAndDelayedExecution
}

// maxIdentityLen bounds Options.Identity; container names built from it
// stay well under the engine's limits.
const maxIdentityLen = 128

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if err := engineopt.Durations("docker",
		engineopt.Duration{Name: "DrainTimeout", Value: &o.DrainTimeout},
		engineopt.Duration{Name: "StopGrace", Value: &o.StopGrace, Default: DefaultStopGrace},
		engineopt.Duration{Name: "StartTimeout", Value: &o.StartTimeout, Default: DefaultStartTimeout},
		engineopt.Duration{Name: "MinRestartBackoff", Value: &o.MinRestartBackoff, Default: DefaultMinRestartBackoff},
		engineopt.Duration{Name: "MaxRestartBackoff", Value: &o.MaxRestartBackoff, Default: DefaultMaxRestartBackoff},
	); err != nil {
		return o, err
	}
	if err := engineopt.Backoff("docker", o.MinRestartBackoff, o.MaxRestartBackoff); err != nil {
		return o, err
	}
	if err := engineopt.Count("docker", "MaxInstances", &o.MaxInstances, DefaultMaxInstances); err != nil {
		return o, err
	}
	if o.LogTailLines < 0 || o.LogTailLines > MaxLogTailLines {
		return o, fmt.Errorf("docker: Options.LogTailLines = %d: want 0–%d (0 = %d)", o.LogTailLines, MaxLogTailLines, DefaultLogTailLines)
	}
	if o.LogTailLines == 0 {
		o.LogTailLines = DefaultLogTailLines
	}
	if o.Identity == "" {
		host, _ := os.Hostname()
		o.Identity = sanitizeName(fmt.Sprintf("%s-%d", host, os.Getpid()))
	}
	if err := checkIdentity(o.Identity); err != nil {
		return o, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o, nil
}

func checkIdentity(id string) error {
	if len(id) > maxIdentityLen {
		return fmt.Errorf("docker: Options.Identity = %q: want at most %d bytes", id, maxIdentityLen)
	}
	for _, c := range []byte(id) {
		if !nameByte(c) {
			return fmt.Errorf("docker: Options.Identity = %q: want only [a-zA-Z0-9_.-] (it is part of container names)", id)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == '-'
}

// sanitizeName replaces what a container name may not contain with '-'
// and makes sure it starts with an alphanumeric byte.
func sanitizeName(s string) string {
	b := []byte(s)
	for i, c := range b {
		if !nameByte(c) {
			b[i] = '-'
		}
	}
	if len(b) == 0 || !(b[0] >= 'a' && b[0] <= 'z' || b[0] >= 'A' && b[0] <= 'Z' || b[0] >= '0' && b[0] <= '9') {
		b = append([]byte("h"), b...)
	}
	return string(b[:min(len(b), maxIdentityLen)])
}
