package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/dispatch"
	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/queueproxy"
)

// dockerConnectTimeout bounds the check for a Docker Engine at start.
const dockerConnectTimeout = 5 * time.Second

// engines returns the backend factory serve uses: revisions with an
// image run on the local Docker Engine, those with only a command as
// local processes. Without a reachable engine image revisions fail to
// deploy saying so, and command revisions still run.
//
// The queue-proxies in front of the instances report no stats of their
// own here (the factory gets only the Server's DrainFunc): the
// activator, which every request passes, reports each revision's demand
// to the autoscaler.
func engines(ctx context.Context, logger *slog.Logger, dockerIdentity string) backend.Factory {
	return func(drain backend.DrainFunc) (backend.Backend, error) {
		// No drain quiet period: the Server's DrainFunc returns once the
		// activator, the only client, has nothing in flight to the
		// instance (process.QueueProxy sets the same).
		qp := queueproxy.Options{Logger: logger.With("component", "queueproxy"), DrainQuietPeriod: -1}
		proc, err := process.New(process.Options{
			Drain:  drain,
			Proxy:  process.QueueProxy(qp),
			Logger: logger.With("component", "process"),
		})
		if err != nil {
			return nil, err
		}
		img := dispatch.Engine{Name: "docker", Runs: dispatch.HasImage}
		dctx, cancel := context.WithTimeout(ctx, dockerConnectTimeout)
		defer cancel()
		d, err := docker.New(dctx, docker.Options{
			Identity: dockerIdentity,
			Drain:    drain,
			Proxy:    docker.QueueProxy(qp),
			Logger:   logger.With("component", "docker"),
		})
		if err != nil {
			img.Missing = err
			logger.Info("no Docker Engine: services with an image cannot run, services with only a command can", "err", err)
		} else {
			img.Backend = d
		}
		return dispatch.New(img, dispatch.Engine{Name: "process", Runs: dispatch.CommandOnly, Backend: proc})
	}
}
