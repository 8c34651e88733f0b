// Package process is the embedded default engine of zeroscale: it runs
// each instance of a revision as a local OS process and implements
// backend.Backend.
//
// An instance runs the revision's Spec.Command and Spec.Args in
// Spec.WorkingDir with the host's environment (Options.Environ), the
// revision's Env, K_SERVICE, K_CONFIGURATION, K_REVISION and PORT set to
// a free loopback port (Spec.Port is not used: many instances share one
// host). Instances of a Scale start in parallel; an instance is Ready once
// its readiness probe passes: a TCP connect to the app by default, or an
// HTTP GET of Spec.Readiness.HTTPPath answered 200–399, probed at once
// and then at intervals growing from 1 ms to 50 ms (1 ms + 5 % of the
// time since the start), for at most Options.StartTimeout. With Spec.Readiness.Period set, it keeps probing
// at that period and publishes readiness changes.
//
// Stopping an instance (scale-down, Remove, Close) never cuts a request:
// it is published Draining, Options.Drain is called, then the fronting
// proxy (if any) drains, all bounded by Options.DrainTimeout; then its
// process group gets SIGTERM and, after Options.StopGrace, SIGKILL.
// Scale-down picks not-ready instances first, then the youngest.
//
// A crashed instance leaves the watch and is restarted after a backoff
// that doubles from Options.MinRestartBackoff up to MaxRestartBackoff. As
// backend.Backend requires, the restart is a new instance: its ID is the
// slot's name with "-r<restarts>" appended ("hello-00001-3-r2"), its
// Started is the restart's, and with a proxy it gets a fresh proxy (and
// Address); the app keeps its port. The slot's restarts add up in
// Backend.Status (a backend.StatusReporter), which shows a crash loop
// with the exit code and the last lines of output. Every line an
// instance prints also reaches Options.Output as
// "<revision>/<instance>: <line>" and Options.OutputFunc.
//
// Reserved instances (backend.Reserver, zeroscale.dev/idle-mode: reserve)
// are processes like the standard ones, with IDs "<revision>-reserved-N",
// whose whole process group runs at a lower CPU priority: the nice value
// of zeroscale.dev/reserved-nice (default 10), set with
// setpriority(PRIO_PGRP) right after the exec (Linux reaches every
// thread; later threads and children inherit it). Nice, not a cgroup
// cpu.weight: it needs no delegated cgroup. The profile's CPU and memory
// are not applied to processes.
//
// Frozen standby (backend.Freezer, zeroscale.dev/idle-mode: freeze):
// Freeze drains each ready instance through the DrainFunc and stops its
// whole process group with SIGSTOP (not the cgroup v2 freezer: instances
// have no cgroup of their own); Thaw resumes it with SIGCONT. A frozen
// instance is not probed or restarted, and a stop resumes it first.
//
// No process started for an instance outlives the host, however the host
// dies. Each instance runs in its own process group, and on Linux with a
// parent-death signal (SIGKILL). That signal reaches only the direct
// child, so each Backend also runs one guard: a /bin/sh process that
// reads the live process groups from a pipe held only by the host and,
// when the pipe closes because the host is gone (SIGKILL, OOM kill,
// panic), SIGKILLs every group still on it. A process that leaves its
// group (setsid, a daemon) escapes the guard, but every instance process
// carries ZEROSCALE_PROCESS_HOST=<host pid>.<host start time> in its
// environment (inherited by all it forks), and on Linux New SIGKILLs every
// process of the same user whose marker names a host that no longer runs:
// a restarted host removes what a previous run left behind. Processes of
// live hosts are never touched. Close (io.Closer) and Shutdown stop
// everything and reap every process. MaxInstances
// (backend.InstanceLimiter) publishes Options.MaxInstances so callers cap
// their decisions at it.
//
// With Options.Proxy set (QueueProxy builds a queueproxy.Proxy per
// instance, as the zeroscale Server does), each instance is fronted by an
// in-process proxy on its own loopback listener: that listener is the
// instance's Address, the instance is Ready once the proxy's probe (which
// checks the app, on the same cadence) passes, the proxy's Run goes on
// for the instance's life, and its Drain runs before SIGTERM.
package process
