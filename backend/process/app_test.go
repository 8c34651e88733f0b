package process_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/backend/process/activation"
	"github.com/zeroscale/zeroscale/revision"
)

// The test binary doubles as the instances' app: when appModeEnv is set,
// TestMain runs the app in that mode instead of the tests, so the tests
// start real processes without building a separate binary.
const appModeEnv = "ZEROSCALE_PROCESS_TEST_APP"

// App modes.
const (
	modeServe      = "serve"       // backendtest.App plus /ready, /unready, /crash, /env
	modeIgnoreTerm = "ignore-term" // as serve, but ignores SIGTERM
	modeCrash      = "crash"       // prints two lines and exits 3 at once
	modeHang       = "hang"        // never listens
	modeHost       = "host"        // a host running one serve instance (parent-death test)
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(appModeEnv); mode != "" {
		os.Exit(runApp(mode))
	}
	os.Exit(m.Run())
}

func runApp(mode string) int {
	fmt.Println("app starting")
	switch mode {
	case modeCrash:
		fmt.Fprintln(os.Stderr, "fatal: boom")
		return 3
	case modeHang:
		select {}
	case modeHost:
		return runHost()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if mode == modeIgnoreTerm {
		// After NotifyContext: Notify would undo an earlier Ignore.
		signal.Ignore(syscall.SIGTERM)
	}
	// The inherited socket under Spec.SocketActivation, else its own.
	activated := os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid())
	ln, err := activation.Listen("127.0.0.1:" + os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var ready atomic.Bool
	ready.Store(true)
	mux := http.NewServeMux()
	mux.Handle("/", backendtest.App())
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /activated", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, activated) })
	mux.HandleFunc("GET /unready", func(http.ResponseWriter, *http.Request) { ready.Store(false) })
	mux.HandleFunc("GET /crash", func(http.ResponseWriter, *http.Request) {
		fmt.Println("crashing on request")
		os.Exit(4)
	})
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		fmt.Println("got SIGTERM")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Println("listening")
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// hostWrapEnv, when set for a host, is a shell script the host's
// instance runs as `sh -c SCRIPT APP`, the script's $0 being this test
// binary in serve mode: a wrapper that forks, as real start scripts do.
const hostWrapEnv = "ZEROSCALE_PROCESS_TEST_HOST_WRAP"

// runHost runs a Backend with one serve instance, prints the instance's
// pid and its output lines and blocks until it is killed.
func runHost() int {
	b, err := process.New(process.Options{Output: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rev, err := appRevision("host-00001", modeServe, func(s *revision.Spec) {
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

// appRevision is a revision whose instances run this test binary in mode.
func appRevision(name, mode string, mods ...func(*revision.Spec)) (revision.Revision, error) {
	exe, err := os.Executable()
	if err != nil {
		return revision.Revision{}, err
	}
	spec := revision.Spec{
		Command: []string{exe},
		Env:     appEnv(mode),
	}
	for _, m := range mods {
		m(&spec)
	}
	return revision.New(configOf(name), name, 1, spec, time.Unix(0, 0))
}

// appEnv runs the app in mode. A race-enabled binary sleeps 1 s before
// exiting by default (GORACE atexit_sleep_ms), which would slow every stop.
func appEnv(mode string) []revision.EnvVar {
	return []revision.EnvVar{{Name: appModeEnv, Value: mode}, {Name: "GORACE", Value: "atexit_sleep_ms=0"}}
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
