// Package activation is the app's side of systemd-style socket
// activation (sd_listen_fds(3)), as the process backend offers it to a
// revision with Spec.SocketActivation (the zeroscale.dev/socket-activation
// annotation): the backend binds the app's port and listens before the
// app starts, and hands the listening socket over as file descriptor 3
// with LISTEN_FDS=1 and LISTEN_PID set to the app's pid. A request that
// wakes the app waits in the kernel's accept queue while the app starts,
// instead of on a readiness probe loop.
//
// Listen returns that socket when the app was given one, and otherwise
// listens on the address it is given, so one app binary runs either way.
// It depends on the standard library only, so an app importing it stays
// small and starts fast.
package activation
