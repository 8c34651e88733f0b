// Command standby measures frozen standby (zeroscale.dev/idle-mode:
// freeze) on the process backend, against baselines measured in the
// same run:
//
//   - thaw: the time to first byte of a request to a frozen revision
//     minus the app's own warm time to first byte (the median of the
//     warm requests just before that freeze), p50/p99 over -thaws
//     cycles; and, for scale, one cold start from zero in the same run;
//
//   - idle CPU: utime+stime (from /proc/<pid>/stat) of the frozen app
//     across -idle of wall time, against the same app left running
//     (not frozen) across the same time.
//
//     go run ./bench/standby                    # 50 thaws, 60 s idle (~3 min)
//     go run ./bench/standby -thaws 10 -idle 5s # quicker
//
// The stack is the one the zeroscale Server runs: control.Controller
// (activator -> in-process queue-proxy -> app process), with the app
// this binary re-executed with -role app. The Controller (autoscaler,
// activator, queue-proxy) runs on a fake clock that the program steps
// to take the revision to zero (so a cycle takes milliseconds, not the
// stable window plus grace period); the engine and every measured
// request run in real time.
//
// Docker's pause and unpause are timed by the e2e test
// TestDockerFrozenStandby, which logs them (EventFrozen, EventThawed)
// with the first byte after a thaw.
package main
