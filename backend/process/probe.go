package process

import (
	"context"
	"time"
)

// aggressiveProbeTimeout bounds one probe attempt while an instance starts,
// as Knative's queue-proxy does (100 ms per attempt, every 50 ms).
const aggressiveProbeTimeout = 100 * time.Millisecond

// probeFunc runs one readiness check of an instance: nil if it is ready.
// It is the app's probe.App, or a fronting proxy's verdict.
type probeFunc func(ctx context.Context) error
