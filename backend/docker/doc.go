// Package docker is a backend.Backend that runs each instance of a
// revision as a container on one Docker Engine, through the engine's
// official Go client (github.com/moby/moby/client; it negotiates the API
// version down to the engine's, 1.41 for Docker 20.10 and later).
//
// Lifecycle of an instance (one container; a restart is a new instance
// with a new ID and a new container):
//
//   - Deploy checks that Spec.Image exists in the engine (the backend
//     never pulls: a missing image is backend.ErrInvalidArgument saying
//     how to build, load or import it) and pins the revision to the
//     image's ID. It starts nothing.
//   - Scale creates and starts containers labelled with the revision,
//     the instance and the backend's identity (LabelRevision,
//     LabelInstance, LabelIdentity). The app gets Spec.Env plus PORT
//     (Spec.Port), K_SERVICE, K_CONFIGURATION and K_REVISION; CPU and
//     memory limits and requests come from Spec.Resources. Its port is
//     published on 127.0.0.1 only, on a port the engine picks, read back
//     with ContainerInspect. Spec.Command and Spec.Args, when set,
//     override the image's entrypoint and command.
//   - ScaleReserved (backend.Reserver, zeroscale.dev/idle-mode: reserve)
//     runs the revision's reserved instance the same way, labelled
//     LabelKind "reserved", with the reserved profile's resources
//     (zeroscale.dev/reserved-cpu as NanoCPUs and CPU shares,
//     reserved-memory as Memory) instead of Spec.Resources.
//   - Freeze (backend.Freezer, zeroscale.dev/idle-mode: freeze) drains
//     each ready container and pauses it (ContainerPause: the engine's
//     cgroup freezer); Thaw unpauses it. A paused container is not
//     probed, and a stop unpauses it first.
//   - Ready comes from our own probe, never from the container merely
//     running: first an HTTP request through the published port must be
//     answered (a TCP connect proves nothing there, as the engine's
//     docker-proxy accepts it whether or not the app listens), then the
//     fronting proxy's own probe (Spec.Readiness) must pass.
//   - The queue-proxy runs in the host process, not as a sidecar
//     container: Options.Proxy (QueueProxy for a *queueproxy.Proxy)
//     fronts every instance on a loopback listener of the host, which is
//     the instance's Address. That costs no second container per
//     instance (create and start are most of a cold start), needs no
//     queue-proxy image, and reports stats to the host's autoscaler in
//     process, exactly as backend/process does.
//   - Crashes come from the engine's event stream (die, oom), which is
//     re-subscribed with backoff whenever it breaks, followed each time
//     by a full re-list of the backend's containers so a death missed
//     meanwhile is still found. A crashed instance leaves the watch at
//     once; its exit code, OOM flag and last log lines are kept for
//     Status, and a new instance replaces it after a backoff that
//     doubles with every crash in a row (Options.MinRestartBackoff to
//     MaxRestartBackoff), so a crash loop shows in Status rather than
//     spinning.
//   - Stop (scale-down, Remove, Close): the instance is published
//     Draining, Options.Drain is called, the proxy drains, then
//     ContainerStop gives the app Options.StopGrace between SIGTERM and
//     SIGKILL, and the container is removed. An instance never ready
//     had no traffic and is removed at once.
//
// No orphans: every container carries the backend's identity
// (Options.Identity). New removes all containers of its identity, so a
// host restarted after kill -9 with the same identity cleans up what
// its previous run left; Close removes everything the backend created.
// Containers of any other identity are never touched, so several hosts
// (and test runs) share one engine safely.
//
// Capabilities: Status (backend.StatusReporter) reports each slot's
// state, restarts, last exit and log lines; MaxInstances
// (backend.InstanceLimiter) is Options.MaxInstances; Close and
// Shutdown(ctx) (io.Closer) stop and remove everything. ServerFactory
// plugs the backend into zeroscale.Options.NewProxiedBackend.
//
// Errors: an unreachable engine is backend.ErrTransient naming where the
// client looked (DOCKER_HOST or the default socket); an engine conflict
// or timeout is ErrTransient; a request the engine refuses is
// ErrInvalidArgument.
//
// Images without a registry: ImportBinary makes a one-file image from a
// static executable (CGO_ENABLED=0), as the tests and examples/docker do.
package docker
