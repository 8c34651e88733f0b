package backend

import "errors"

// Errors every Backend returns, checkable with errors.Is. Engines wrap
// them with %w and add context (revision name, engine message).
var (
	// ErrNotDeployed: the engine has no such revision (never deployed,
	// removed, or being removed).
	ErrNotDeployed = errors.New("revision not deployed")
	// ErrInvalidArgument: the call can never succeed as made (negative
	// scale, a name reused with a different spec, a spec the engine
	// cannot run). Permanent.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrTransient: the engine failed in a way that may pass (engine
	// unreachable, conflict, timeout). The caller may retry.
	ErrTransient = errors.New("transient backend error")
)

// IsTransient reports whether err is worth retrying.
func IsTransient(err error) bool { return errors.Is(err, ErrTransient) }
