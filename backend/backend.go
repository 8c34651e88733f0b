package backend

import (
	"context"
	"net/http"
	"time"

	"github.com/zeroscale/zeroscale/revision"
)

// Backend runs the instances of revisions: local processes, Docker
// containers, Kubernetes pods, or in-memory fakes.
//
// The shape follows what every engine can do cheaply and what the layers
// above need, and no more:
//
//   - Deploy makes a revision known and deployable (a Deployment at
//     replicas 0, a pulled image, a checked command). It starts nothing.
//   - Scale sets the desired number of instances. It is declarative and
//     asynchronous: it records the target and returns; the engine
//     converges. This maps directly onto the Kubernetes scale
//     subresource and onto a reconcile loop for processes and containers.
//   - Remove stops every instance (draining each first) and forgets the
//     revision. It may return before the instances have stopped; the
//     revision's watches close once they have. While a revision is being
//     removed, Scale of it may already fail with ErrNotDeployed and Deploy
//     of its name may fail with ErrTransient.
//   - Watch streams whole snapshots of a revision's instances rather than
//     deltas. A snapshot stream cannot be misordered or half-applied, a
//     slow reader only ever misses intermediate states (never the latest),
//     and the channel stays bounded (capacity 1, newest replaces unread).
//     It maps onto EndpointSlice informers, Docker events and process
//     exits alike.
//
// Idempotency: Deploy of the same revision (same name and spec) again,
// Scale to the current target, and Remove of a revision being removed all
// succeed and change nothing. Deploy of a known name with a different
// spec fails with ErrInvalidArgument. Scale, Remove and Watch of an
// unknown revision fail with ErrNotDeployed. A negative scale fails with
// ErrInvalidArgument.
//
// Scale 0 stops every instance (after draining); the revision stays
// deployed and can be scaled up again.
//
// Draining: before an engine stops an instance for any reason other than
// a crash, it first publishes the instance with Draining set (so the
// activator sends it nothing new), then calls the DrainFunc the host gave
// the engine at construction, and stops the instance only when that
// returns (or its drain timeout passes). In-flight requests are
// therefore never cut by scale-down. An instance that was never Ready
// had no traffic and may be stopped without draining. On scale-down
// engines choose victims not-ready first, then youngest first.
//
// Ordering: the first value on a new watch channel is the revision's
// current snapshot (possibly empty), sent at once. After it, snapshots
// are delivered in the order the engine observed them. An instance
// appears in a snapshot before it is Ready (or at once Ready), is Ready
// before it can be Draining, keeps its ID, Address and Started, leaves
// the snapshot once stopped, and never comes back. The channel is closed
// when ctx is done or the revision is removed. Broadcaster implements
// these channel semantics for engines.
//
// Restarts: an instance is one incarnation of the app. When the app
// exits (a crash, a failed liveness check, an OOM kill) and the engine
// starts it again, the restarted app is a NEW instance with a NEW ID,
// never used before within the engine's life, and Started set to when
// the new incarnation started; the old instance leaves the snapshot
// (without draining: its app is gone). So the first Ready of an ID is
// always the end of a start-up the layers above may measure, and a Ready
// that comes back for the same ID is only a readiness probe that failed
// and passed again. (Kubernetes: e.g. pod name + "-" + the user
// container's restart count; Docker: a new container; processes: a new
// ID per exec.) backendtest fails an engine that breaks this rule.
//
// All methods are safe for concurrent use.
type Backend interface {
	Deploy(ctx context.Context, rev revision.Revision) error
	Scale(ctx context.Context, revision string, n int) error
	Remove(ctx context.Context, revision string) error
	Watch(ctx context.Context, revision string) (<-chan []Instance, error)
}

// Instance is one running (or starting, or draining) copy of a revision.
type Instance struct {
	// ID is stable for the instance's life and unique within the
	// backend's life: a restart of the app is a new instance with a new
	// ID (see Backend).
	ID string
	// Revision is the name of the revision it runs.
	Revision string
	// Address is host:port where it serves HTTP (its queue-proxy when
	// the engine runs one in front of the app).
	Address string
	// Ready is true once its readiness probe passed; only ready,
	// non-draining instances get traffic.
	Ready bool
	// Draining is true from the moment the engine decided to stop it.
	Draining bool
	// Frozen is true from the moment the engine began freezing it (see
	// Freezer) until it is thawed again: it keeps its ID, Address and
	// Ready, is not Serving, and is neither lost nor restarted.
	Frozen bool
	// Started is when the engine started this incarnation (not the
	// first start of a slot that was restarted since).
	Started time.Time
	// Handler, when not nil, is the instance's queue-proxy in this
	// process (a *queueproxy.Proxy): the activator then hands requests
	// to it directly, and the queue-proxy's breaker, stats, timeouts,
	// drain and header hygiene apply in the one hop it proxies to the
	// app, instead of a second hop over Address. Engines whose proxy
	// runs out of process (a sidecar) leave it nil; Address is set
	// either way. It is set by the time the instance is Ready.
	Handler http.Handler
	// Listening is when the engine first found this incarnation's app
	// accepting connections (with a TCP readiness probe, when that probe
	// passed); zero until then, or when the engine does not know. With
	// Started and the moment it turned Ready it splits a cold start into
	// its phases (the activator's cold-start spans and metrics).
	Listening time.Time
	// Reserved marks a reserved instance (see Reserver): one started
	// with the revision's cheaper profile, which Scale does not count.
	// False for a standard instance, the only kind engines without
	// Reserver run.
	Reserved bool
}

// Kind is "reserved" for a reserved instance, else "standard": the word
// status and events use.
func (in Instance) Kind() string {
	if in.Reserved {
		return "reserved"
	}
	return "standard"
}

// Serving reports whether in takes requests: it is Ready, not Draining
// and not Frozen.
func (in Instance) Serving() bool { return in.Ready && !in.Draining && !in.Frozen }

// Engines receive the host's DrainFunc at construction (in their
// Options), so a host builds its engine through a Factory: it can create
// the activator (whose WaitInstanceIdle is the DrainFunc) before the
// engine, and the engine before anything that needs its instances.

// DrainFunc is called by an engine before it stops inst, and must return
// once inst has no request in flight (or ctx is done). Engines bound it
// with their drain timeout.
type DrainFunc func(ctx context.Context, inst Instance) error

// Factory builds an engine that calls drain before it stops an instance
// (see DrainFunc). The root zeroscale.Server and the control package take
// one, so the host does not have to wire the construction cycle of
// activator (needs the autoscaler's reporter), autoscaler (needs a
// publisher) and engine (needs the activator's drain) itself. Whoever
// calls a Factory owns the engine: it closes it when it implements
// io.Closer.
type Factory func(drain DrainFunc) (Backend, error)

// Optional capabilities. An engine implements what it can; callers find
// them by type assertion on the Backend, as with io.WriterTo:
//
//   - StatusReporter: per-revision engine status (crash loops, exit codes,
//     last output lines).
//   - InstanceLimiter: the engine's cap on instances per revision, so the
//     autoscaler's decision is capped at it instead of refused.
//   - Freezer: suspend a revision's instances in place and resume them
//     (zeroscale.dev/idle-mode: freeze); a host refuses a revision that
//     asks for it on an engine without it.
//   - Reserver: a reserved instance beside the standard ones
//     (zeroscale.dev/idle-mode: reserve).
//   - io.Closer: Close stops everything the engine started (draining
//     first, bounded by the engine's drain timeout) and releases its
//     resources; every later call fails.

// StatusReporter is implemented by engines that can say more about a
// revision's instances than Watch does.
type StatusReporter interface {
	// Status returns the engine's view of the named revision now
	// (ErrNotDeployed if it is not deployed).
	Status(ctx context.Context, revision string) (EngineStatus, error)
}

// Reserver is implemented by engines that can run a revision's reserved
// instance (revision.IdleModeReserve): an instance started with the
// revision's cheaper profile, revision.Scaling.Reserved (process: its
// Nice; Docker and Kubernetes: its CPU and memory), beside the standard
// instances Scale asks for. The two kinds are counted apart:
//
//   - ScaleReserved sets the desired number of reserved instances of the
//     revision, 0 or 1 (else ErrInvalidArgument), as Scale does for
//     standard ones: declarative, asynchronous, idempotent, ErrNotDeployed
//     for an unknown revision. It starts at 0 on Deploy.
//   - Scale(n) sets the standard instances only: Scale 0 leaves a
//     reserved instance running, and ScaleReserved changes no standard
//     one. InstanceLimiter's cap is the standard instances'; the
//     reserved one is on top of it.
//   - Watch lists both kinds in one snapshot, reserved ones with
//     Instance.Reserved set; every other rule of Backend holds for them
//     (a reserved instance drains before it stops, a restarted one is a
//     new reserved instance with a new ID, Remove stops both kinds).
//
// backendtest's suite checks this of every engine that implements it.
// The control package keeps one reserved instance while the autoscaler
// wants none and until enough standard instances serve; an engine that
// is not a Reserver cannot run a revision with idle-mode reserve (Add
// fails, naming the annotation).
type Reserver interface {
	ScaleReserved(ctx context.Context, revision string, n int) error
}

// InstanceLimiter is implemented by engines that cannot run more than a
// fixed number of instances of one revision. Scale above MaxInstances
// fails with ErrInvalidArgument; callers cap their decisions at it.
type InstanceLimiter interface {
	// MaxInstances is the cap of instances per revision; 0 means none.
	MaxInstances() int
}

// MaxInstances returns b's cap of instances per revision, 0 when it has
// none (it does not implement InstanceLimiter).
func MaxInstances(b Backend) int {
	if l, ok := b.(InstanceLimiter); ok {
		return max(l.MaxInstances(), 0)
	}
	return 0
}

// Freezer is implemented by engines that can suspend the instances of a
// revision in place, keeping their memory but using no CPU, and resume
// them where they stopped: a frozen standby that serves again in about
// the time of a signal, instead of a cold start.
//
// Freeze takes every Ready, non-Draining instance of the revision:
// it publishes each one Frozen (so it is no longer Serving and the
// activator sends it nothing new), calls the DrainFunc for it (no
// request in flight is frozen mid-way), then suspends it. Instances
// not Ready yet are stopped, and the revision's Scale target becomes
// the number of frozen instances, so a frozen revision has only frozen
// instances. Freeze returns once every one of them is suspended; it is
// idempotent (a frozen instance stays frozen).
//
// While frozen, an instance stays in every snapshot with its ID,
// Address, Started and Ready, and Frozen set: it is neither lost nor
// restarted, and the engine's readiness and liveness checks leave it
// alone. Thaw resumes every frozen instance of the revision and returns
// once each one is resumed and a snapshot without Frozen has been
// published: the same instances (same IDs) serve again; nothing is
// started. Thaw of a revision with nothing frozen does nothing.
//
// Scale, Remove and Close work on frozen instances as on others: the
// ones they stop are resumed (or killed) as part of stopping, and a
// Scale up while frozen starts new, unfrozen instances next to the
// frozen ones. Both methods fail with ErrNotDeployed for an unknown
// revision.
type Freezer interface {
	Freeze(ctx context.Context, revision string) error
	Thaw(ctx context.Context, revision string) error
}

// EngineStatus is an engine's view of one revision's instances (the
// Server's zeroscale.RevisionStatus adds traffic, scaling and conditions).
type EngineStatus struct {
	Revision string
	// Desired is the last Scale target (0 while being removed).
	Desired int
	// Removing is set once Remove (or Close) began.
	Removing bool
	// Instances are the engine's instance slots, including those waiting
	// to be restarted after a crash (InstanceBackOff), which Watch does
	// not list.
	Instances []InstanceStatus
	// Message is the engine's own word on the revision when it has one
	// (an image pull error, an unschedulable pod); "" otherwise.
	Message string
}

// CrashLooping returns the instances waiting to be restarted after a
// crash.
func (s EngineStatus) CrashLooping() []InstanceStatus {
	var out []InstanceStatus
	for _, in := range s.Instances {
		if in.State == InstanceBackOff {
			out = append(out, in)
		}
	}
	return out
}

// InstanceState is where an instance slot is in its life.
type InstanceState string

// Instance states.
const (
	// InstanceStarting: started, not Ready yet.
	InstanceStarting InstanceState = "Starting"
	// InstanceRunning: passed its readiness probe (Ready may still drop
	// while a periodic probe fails).
	InstanceRunning InstanceState = "Running"
	// InstanceBackOff: the app exited (or missed its start timeout) and
	// the engine waits to start it again; a crash loop when it repeats
	// (see Restarts, LastExit). Instance.ID is the last incarnation's.
	InstanceBackOff InstanceState = "BackOff"
	// InstanceDraining: chosen to stop, being drained.
	InstanceDraining InstanceState = "Draining"
	// InstanceStopping: drained; being stopped.
	InstanceStopping InstanceState = "Stopping"
	// InstanceFrozen: suspended by Freezer.Freeze (or being drained to
	// be), until Thaw.
	InstanceFrozen InstanceState = "Frozen"
)

// InstanceStatus is one instance slot as the engine sees it: the current
// (or last) incarnation and its history of restarts.
type InstanceStatus struct {
	Instance
	State InstanceState
	// AppAddress is where the app itself listens: Address, unless a
	// proxy fronts the app; "" when the engine does not know.
	AppAddress string
	// Restarts counts restarts after crashes: incarnations of this slot
	// after the first.
	Restarts int
	// LastExit is how the last incarnation ended, nil if none did.
	LastExit *Exit
	// NextRestart is when an InstanceBackOff slot starts again.
	NextRestart time.Time
	// Output is its last output lines, oldest first, when the engine
	// keeps them.
	Output []string
	// Detail is engine-specific extra state (a PID, a container or pod
	// name), for humans.
	Detail string
}

// Exit describes how an instance's app last ended.
type Exit struct {
	// Code is the exit code, or -1 if it was killed by a signal or never
	// started.
	Code int
	// Reason says why, e.g. "exit status 3", "signal: killed",
	// "OOMKilled", "not ready within 1m0s".
	Reason string
	// Time is when it ended.
	Time time.Time
	// Output is the instance's last output lines at that moment, oldest
	// first, when the engine keeps them.
	Output []string
}
