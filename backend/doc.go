// Package backend defines the Backend interface every instance engine
// implements (local processes, Docker, Kubernetes, the in-memory fake),
// its typed errors (ErrNotDeployed, ErrInvalidArgument, ErrTransient,
// checkable with errors.Is and IsTransient), the Instance it
// reports through Watch, and the DrainFunc a caller supplies (through a
// Factory) so that no instance is stopped with requests in flight.
//
// Optional engine capabilities are small interfaces found by type
// assertion: StatusReporter (per-revision status: crash loops, exit
// codes, last output), InstanceLimiter (the engine's cap on instances
// per revision) and io.Closer.
//
// Broadcaster is the helper engines build Watch on: bounded, latest-wins
// fan-out of instance snapshots. The contract test suite every engine
// runs lives in backend/backendtest; backend/fake is the in-memory engine
// that tests and simulations use.
package backend
