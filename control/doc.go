// Package control owns the life of revisions on any backend.Backend:
// what the zeroscale Server uses, and what a host that wires the
// activator, the autoscaler and its own API and storage uses instead of
// writing the glue again.
//
// A Controller builds the autoscaler's Multiscaler, the activator and
// the engine (through a backend.Factory that receives the activator's
// drain), which breaks their construction cycle. For every revision
// added, it:
//
//   - deploys it and makes it routable in the activator;
//   - fans each backend.Watch snapshot out to the activator (which
//     instances get requests) and the autoscaler (ready count); the
//     first serving instance makes the revision Ready;
//   - applies the autoscaler's decisions with backend.Scale: the newest
//     decision wins, the publisher never blocks, transient errors are
//     retried with back-off doubling from MinRetry to MaxRetry, permanent
//     ones are kept in Status and reported as EventScaleFailed, and a
//     decision above the engine's backend.InstanceLimiter is capped
//     (never refused), visible in Status.Cap and as EventScaleCapped;
//   - drains through activator.Handler.WaitInstanceIdle before the
//     engine stops an instance, so scale-down cuts no request;
//   - with zeroscale.dev/idle-mode reserve (a backend.Reserver engine),
//     keeps one reserved instance instead of zero: started with the
//     revision's cheaper profile when the autoscaler goes to zero, ready
//     before the last standard instance goes, drained once enough
//     standard instances serve again (EventReservedStarted,
//     EventReservedRetired; ErrCannotReserve on other engines);
//   - with zeroscale.dev/idle-mode freeze (a backend.Freezer engine),
//     freezes the instances instead of scaling to zero (the engine
//     drains them first), thaws them before applying the next decision
//     above zero (the activator holds that request for the thaw only),
//     and scales to zero once zeroscale.dev/standby-retention passes
//     without a request (EventFrozen, EventThawed, EventStandbyExpired,
//     Status.Frozen; ErrCannotFreeze on other engines);
//   - on Remove, tears down in order: no more decisions, the engine
//     drains and stops every instance, then the activator forgets the
//     revision; a half-failed Add is rolled back the same way.
//
// Routing stays the host's: give the activator a Picker (a
// traffic.Table, say) and tell the autoscaler which revisions a route
// reaches (Autoscaler().SetReachable).
package control
