package zeroscale

import (
	"context"

	"github.com/zeroscale/zeroscale/backend"
)

// drain is the process backend's DrainFunc. It returns once the
// activator sends nothing more to inst and every request it sent there
// has finished (see activator.Handler.WaitInstanceIdle), or ctx ends.
// Only then may the queue-proxy's own drain, which sees requests once
// they arrive, decide that inst is idle.
func (s *Server) drain(ctx context.Context, inst backend.Instance) error {
	return s.act.WaitInstanceIdle(ctx, inst.Revision, inst.ID)
}
