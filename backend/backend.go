package backend

import (
	"context"
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
//     removed, Scale of it may already fail with ErrNotFound and Deploy
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
// unknown revision fail with ErrNotFound. A negative scale fails with
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
// the snapshot once stopped, and never comes back (a restart is a new
// instance with a new ID). The channel is closed when ctx is done or the
// revision is removed. Broadcaster implements these channel semantics
// for engines.
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
	// ID is stable for the instance's life and unique within the backend.
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
	// Started is when the engine started it.
	Started time.Time
}

// Serving reports whether in takes requests: it is Ready and not
// Draining.
func (in Instance) Serving() bool { return in.Ready && !in.Draining }

// DrainFunc is called by an engine before it stops inst, and must return
// once inst has no request in flight (or ctx is done). Engines bound it
// with their drain timeout.
type DrainFunc func(ctx context.Context, inst Instance) error
