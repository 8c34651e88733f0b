package main

import (
	"context"
	"log/slog"

	"github.com/zeroscale/zeroscale/backend"
)

// engines returns the backend factory serve uses (nil: the Server's
// default, local processes) and what to close at exit.
func engines(_ context.Context, _ *slog.Logger) (backend.Factory, func(), error) {
	return nil, func() {}, nil
}
