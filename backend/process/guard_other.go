//go:build !unix

package process

import "log/slog"

// guard does nothing on these systems: they have no process groups to
// kill (see sysProcAttr).
type guard struct{}

func newGuard(*slog.Logger) *guard { return &guard{} }
func (*guard) add(int)             {}
func (*guard) remove(int)          {}
func (*guard) close()              {}
