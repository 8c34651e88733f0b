package hop

import (
	"context"
	"errors"
	"net/http"
)

// Local marks a request the activator hands to an in-process
// queue-proxy (backend.Instance.Handler) instead of sending it over a
// loopback connection: the queue-proxy then trusts it as proxied (no
// secret to check: only code in this process can set a context value),
// and does the edge's header work itself in its single hop to the app,
// which the activator's own proxy would have done: it strips the
// internal headers, sets X-Forwarded-* as the edge (SetXForwarded with
// TrustForwarded) and Forwarded from them, and injects W3C trace context
// when Propagate. The request is the client's, unmodified: the
// queue-proxy must not write to its header map.
type Local struct {
	// TrustForwarded: the client is one of the activator's trusted
	// proxies, so its X-Forwarded-* are believed.
	TrustForwarded bool
	// Propagate: the activator traces; the app gets the request
	// context's span as traceparent.
	Propagate bool
}

type localKey struct{}

// WithLocal returns ctx marking its request as handed over in process.
func WithLocal(ctx context.Context, l *Local) context.Context {
	return context.WithValue(ctx, localKey{}, l)
}

// LocalOf returns the mark WithLocal set, or nil.
func LocalOf(ctx context.Context) *Local {
	l, _ := ctx.Value(localKey{}).(*Local)
	return l
}

// ErrRequestTimeout is the activator's cause for a held request whose
// request timeout passed before its response started; an in-process
// queue-proxy seeing it as its context's cause answers 504, as the
// activator would have.
var ErrRequestTimeout = errors.New("request timeout")

// InternalHeaders are only ever set by the activator; a client's copies
// are removed so that it cannot spoof proxied accounting, routing or
// probes at the queue-proxy.
var InternalHeaders = []string{ActivatorHeader, OriginalHostHeader, RevisionHeader, ProbeHeader, IdleCheckHeader}

// DelInternal removes the internal headers from h.
func DelInternal(h http.Header) {
	for _, k := range InternalHeaders {
		delete(h, k)
	}
}
