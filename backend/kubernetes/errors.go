package kubernetes

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/zeroscale/zeroscale/backend"
)

// classify maps an API error to the backend's sentinel errors:
// NotFound → ErrNotDeployed; Invalid, Forbidden, BadRequest and other
// requests that cannot succeed as made → ErrInvalidArgument; conflicts,
// timeouts, throttling (429), 5xx, authentication failures (credentials
// may be refreshed) and transport errors → ErrTransient. A cancelled
// ctx is returned as is: the caller gave up, nothing failed.
func classify(err error) error {
	switch {
	case apierrors.IsNotFound(err):
		return backend.ErrNotDeployed
	case apierrors.IsInvalid(err), apierrors.IsForbidden(err), apierrors.IsBadRequest(err),
		apierrors.IsMethodNotSupported(err), apierrors.IsNotAcceptable(err),
		apierrors.IsUnsupportedMediaType(err), apierrors.IsRequestEntityTooLargeError(err):
		return backend.ErrInvalidArgument
	case errors.Is(err, context.Canceled):
		return nil
	default:
		// IsConflict, IsServerTimeout, IsTimeout, IsTooManyRequests,
		// IsInternalError, IsServiceUnavailable, IsUnauthorized,
		// IsUnexpectedServerError, connection errors, deadlines.
		return backend.ErrTransient
	}
}

// apiError wraps err from op on rev with its sentinel (see classify).
func apiError(op, rev string, err error) error {
	if err == nil {
		return nil
	}
	if s := classify(err); s != nil {
		return fmt.Errorf("kubernetes: %s %s: %w: %w", op, rev, s, err)
	}
	return fmt.Errorf("kubernetes: %s %s: %w", op, rev, err)
}
