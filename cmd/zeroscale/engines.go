package main

import (
	"log/slog"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/dispatch"
	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/queueproxy"
)

// engines returns the engine factory serve uses: revisions with an
// image run on the local Docker Engine, those with only a command as
// local processes, every instance fronted by a queue-proxy built from
// the Server's options (so it reports to the Server's autoscaler).
// Without a reachable Docker Engine, image revisions fail to deploy
// saying so, and command revisions still run.
func engines(logger *slog.Logger, dockerIdentity string) control.ProxiedFactory {
	return func(drain backend.DrainFunc, qp queueproxy.Options) (backend.Backend, error) {
		proc, err := process.New(process.Options{
			Drain:  drain,
			Proxy:  process.QueueProxy(qp),
			Logger: logger.With("component", "process"),
		})
		if err != nil {
			return nil, err
		}
		img := dispatch.Engine{Name: "docker", Runs: dispatch.HasImage}
		d, err := docker.ServerFactory(docker.Options{Identity: dockerIdentity, Logger: logger.With("component", "docker")})(drain, qp)
		if err != nil {
			img.Missing = err
			logger.Info("no Docker Engine: services with an image cannot run, services with only a command can", "err", err)
		} else {
			img.Backend = d
		}
		return dispatch.New(img, dispatch.Engine{Name: "process", Runs: dispatch.CommandOnly, Backend: proc})
	}
}
