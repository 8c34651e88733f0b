package process_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// The test binary doubles as the instances' app (internal/testapp) and
// as a host: when testapp.ModeEnv is set, TestMain runs the app; when
// hostEnv is, a host; else the tests.
const hostEnv = "ZEROSCALE_PROCESS_TEST_HOST"

func TestMain(m *testing.M) {
	testapp.Main()
	if os.Getenv(hostEnv) != "" {
		os.Exit(runHost())
	}
	os.Exit(m.Run())
}

// hostWrapEnv, when set for a host, is a shell script the host's
// instance runs as `sh -c SCRIPT APP`, the script's $0 being this test
// binary as the app: a wrapper that forks, as real start scripts do.
const hostWrapEnv = "ZEROSCALE_PROCESS_TEST_HOST_WRAP"

// hostCommandEnv is the environment of a host process.
func hostCommandEnv(extra ...string) []string {
	return append(append(os.Environ(), hostEnv+"=1", "GORACE=atexit_sleep_ms=0"), extra...)
}

// runHost runs a Backend with one serve instance, prints the instance's
// pid and its output lines and blocks until it is killed.
func runHost() int {
	b, err := process.New(process.Options{Output: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rev, err := appRevision("host-00001", testapp.Serve, func(s *revision.Spec) {
		if wrap := os.Getenv(hostWrapEnv); wrap != "" {
			s.Command = []string{"/bin/sh", "-c", wrap, s.Command[0]}
		}
	})
	if err == nil {
		err = b.Deploy(context.Background(), rev)
	}
	var ch <-chan []backend.Instance
	if err == nil {
		ch, err = b.Watch(context.Background(), rev.Name())
	}
	if err == nil {
		err = b.Scale(context.Background(), rev.Name(), 1)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for snap := range ch {
		if len(snap) == 1 && snap[0].Ready {
			st, _ := b.Status(context.Background(), rev.Name())
			fmt.Printf("instance-pid %d\n", pidOf(st.Instances[0]))
		}
	}
	return 1
}

// appRevision is a revision whose instances run the test app in mode.
func appRevision(name string, mode testapp.Mode, mods ...func(*revision.Spec)) (revision.Revision, error) {
	spec, err := testapp.Spec(testapp.Options{Mode: mode})
	if err != nil {
		return revision.Revision{}, err
	}
	for _, m := range mods {
		m(&spec)
	}
	return revision.New(configOf(name), name, 1, spec, time.Unix(0, 0))
}

// configOf is "hello" for "hello-00001".
func configOf(rev string) string {
	for i := len(rev) - 1; i > 0; i-- {
		if rev[i] == '-' {
			return rev[:i]
		}
	}
	return rev
}

// pidOf returns the PID Status reports in in.Detail ("pid N"), 0 when
// no process runs.
func pidOf(in backend.InstanceStatus) int {
	var pid int
	if _, err := fmt.Sscanf(in.Detail, "pid %d", &pid); err != nil {
		return 0
	}
	return pid
}
