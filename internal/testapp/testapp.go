// Package testapp is the one sample app the tests run as instances: the
// process backend's tests, the e2e tests and the Docker tests (there as a
// static binary, see cmd, imported as an image with docker.ImportBinary,
// so no base image or registry is needed).
//
// A test binary becomes the app by calling Main first in its TestMain;
// Spec then builds a revision.Spec whose instances re-execute the test
// binary as the app, so the tests start real processes without building
// anything.
//
// The app serves backendtest.App (GET / answers "ok\n", /hold, /release)
// on $TESTAPP_HOST:$PORT (the inherited socket under socket activation)
// over HTTP/1.1 and h2c, plus:
//
//	GET /rev        $K_REVISION
//	GET /env?name=N the value of environment variable N
//	GET /sleep?d=D  answers "$K_REVISION slept D" after D (at most 1m)
//	GET /alloc?mb=N allocates and holds N MiB more (1–1024)
//	GET /crash      prints "crashing on request" and exits with ExitCrashOnRequest (4)
//	GET /ready      200 until GET /unready, then 503
//	GET /activated  "true" when it was handed its socket (LISTEN_PID)
//	GET /proto      the request's protocol
//	GET /ws         a WebSocket echoing "$K_REVISION: " + each message
//	GET /job?d=D    starts a background job of D (at most 1m) no request shows
//	GET /idle       409 while a job runs, else 200 (an idle check)
//
// It prints "app starting", "listening on ADDR" and, on SIGTERM or
// SIGINT, "got SIGTERM", and then shuts down gracefully (at most 10 s).
// Its environment (see Options) picks the mode and the variations.
package testapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/process/activation"
	"github.com/zeroscale/zeroscale/revision"
)

// The app's environment variables.
const (
	// ModeEnv is the Mode; a test binary that calls Main runs as the
	// app when it is set.
	ModeEnv = "TESTAPP_MODE"
	// DelayEnv delays listening by a duration.
	DelayEnv = "TESTAPP_DELAY"
	// HostEnv narrows the listener to a host (127.0.0.1 for a local
	// process); unset, it listens on all interfaces, as in a container.
	HostEnv = "TESTAPP_HOST"
	// RootEnv set to "revision" makes GET / answer "$K_REVISION\n".
	RootEnv = "TESTAPP_ROOT"
	// HTTP1OnlyEnv set to "1" makes the app speak HTTP/1.1 only, as
	// most apps do.
	HTTP1OnlyEnv = "TESTAPP_HTTP1_ONLY"
)

// Mode is how the app behaves as a whole.
type Mode string

// Modes.
const (
	Serve      Mode = "serve"       // serves until SIGTERM
	IgnoreTerm Mode = "ignore-term" // serves and ignores SIGTERM (only SIGKILL ends it)
	Crash      Mode = "crash"       // prints "app starting" and "fatal: boom" and exits ExitCrash at once
	Hang       Mode = "hang"        // never listens
)

// The app's exit codes, so a test can tell its crashes apart.
const (
	ExitCrash          = 3 // Crash mode, at start
	ExitCrashOnRequest = 4 // GET /crash
)

// Options are the variations of the app a Spec asks for.
type Options struct {
	Mode         Mode          // default Serve
	Delay        time.Duration // before listening
	Host         string        // default 127.0.0.1 (local processes)
	SayRevision  bool          // GET / answers "$K_REVISION\n" instead of "ok\n"
	HTTP1Only    bool          // no h2c
	Env          []revision.EnvVar
	SocketActive bool // Spec.SocketActivation
}

// env is the app's environment for o. The race runtime sleeps 1 s at
// exit by default (GORACE atexit_sleep_ms); instances exit a lot in the
// tests, so it is turned off.
func (o Options) env() []revision.EnvVar {
	mode := o.Mode
	if mode == "" {
		mode = Serve
	}
	host := o.Host
	if host == "" {
		host = "127.0.0.1"
	}
	env := append([]revision.EnvVar{}, o.Env...)
	env = append(env,
		revision.EnvVar{Name: ModeEnv, Value: string(mode)},
		revision.EnvVar{Name: HostEnv, Value: host},
		revision.EnvVar{Name: "GORACE", Value: "atexit_sleep_ms=0"})
	if o.Delay > 0 {
		env = append(env, revision.EnvVar{Name: DelayEnv, Value: o.Delay.String()})
	}
	if o.SayRevision {
		env = append(env, revision.EnvVar{Name: RootEnv, Value: "revision"})
	}
	if o.HTTP1Only {
		env = append(env, revision.EnvVar{Name: HTTP1OnlyEnv, Value: "1"})
	}
	return env
}

// Spec is a template whose instances run this executable (a test binary
// whose TestMain calls Main) as the app o describes.
func Spec(o Options) (revision.Spec, error) {
	exe, err := os.Executable()
	if err != nil {
		return revision.Spec{}, err
	}
	return revision.Spec{Command: []string{exe}, Env: o.env(), SocketActivation: o.SocketActive}, nil
}

// Main runs the app and exits with its code when ModeEnv is set (the
// process is an instance); else it returns. TestMain calls it first.
func Main() {
	if os.Getenv(ModeEnv) != "" {
		os.Exit(Run())
	}
}

// Run runs the app as its environment says and returns its exit code.
func Run() int {
	fmt.Println("app starting")
	mode := Mode(os.Getenv(ModeEnv))
	switch mode {
	case Crash:
		fmt.Fprintln(os.Stderr, "fatal: boom")
		return ExitCrash
	case Hang:
		for { // not select{}: the runtime would exit on the deadlock
			time.Sleep(time.Hour)
		}
	}
	if d, err := time.ParseDuration(os.Getenv(DelayEnv)); err == nil {
		time.Sleep(d)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if mode == IgnoreTerm {
		// After NotifyContext: Notify would undo an earlier Ignore.
		signal.Ignore(syscall.SIGTERM)
	}
	// Under socket activation (process backend, Spec.SocketActivation)
	// the inherited socket, else its own.
	activated := os.Getenv("LISTEN_PID") == strconv.Itoa(os.Getpid())
	ln, err := activation.Listen(os.Getenv(HostEnv) + ":" + os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: handler(activated), ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(os.Getenv(HTTP1OnlyEnv) == "") // h2c, as gRPC apps speak
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-ctx.Done()
		if mode == IgnoreTerm {
			return // only SIGINT gets here
		}
		fmt.Println("got SIGTERM")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Println("listening on", ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	wg.Wait() // Serve returns at once; Shutdown waits for the requests
	return 0
}

// handler is the app's mux (see the package documentation).
func handler(activated bool) http.Handler {
	rev := os.Getenv("K_REVISION")
	mux := http.NewServeMux()
	mux.Handle("/", backendtest.App())
	if os.Getenv(RootEnv) == "revision" {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, rev) })
	}
	mux.HandleFunc("GET /rev", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, rev) })
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		d, ok := duration(w, r)
		if !ok {
			return
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			fmt.Fprintf(w, "%s slept %v\n", rev, d)
		case <-r.Context().Done():
		}
	})
	var hogMu sync.Mutex
	var hog [][]byte
	mux.HandleFunc("GET /alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
		if err != nil || mb < 1 || mb > 1024 {
			http.Error(w, "mb: 1–1024", http.StatusBadRequest)
			return
		}
		hogMu.Lock()
		defer hogMu.Unlock()
		for range mb {
			b := make([]byte, 1<<20)
			for i := range b { // touched, so it is resident
				b[i] = 1
			}
			hog = append(hog, b)
		}
		fmt.Fprintf(w, "holding %d MiB\n", len(hog))
	})
	mux.HandleFunc("GET /crash", func(http.ResponseWriter, *http.Request) {
		fmt.Println("crashing on request")
		os.Exit(ExitCrashOnRequest)
	})
	var ready atomic.Bool
	ready.Store(true)
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("GET /unready", func(http.ResponseWriter, *http.Request) { ready.Store(false) })
	mux.HandleFunc("GET /activated", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, activated) })
	mux.HandleFunc("GET /proto", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, r.Proto) })
	mux.HandleFunc("GET /ws", func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		defer c.CloseNow()
		for {
			typ, msg, err := c.Read(r.Context())
			if err != nil {
				return
			}
			if err := c.Write(r.Context(), typ, append([]byte(rev+": "), msg...)); err != nil {
				return
			}
		}
	})
	var jobUntil atomic.Int64
	mux.HandleFunc("GET /job", func(w http.ResponseWriter, r *http.Request) {
		d, ok := duration(w, r)
		if !ok {
			return
		}
		jobUntil.Store(time.Now().Add(d).UnixNano())
		io.WriteString(w, "job started\n")
	})
	mux.HandleFunc("GET /idle", func(w http.ResponseWriter, _ *http.Request) {
		if time.Now().UnixNano() < jobUntil.Load() {
			w.WriteHeader(http.StatusConflict)
			return
		}
		io.WriteString(w, "idle\n")
	})
	return mux
}

// duration is the request's d parameter, 0–1m; it answers 400 when not.
func duration(w http.ResponseWriter, r *http.Request) (time.Duration, bool) {
	d, err := time.ParseDuration(r.URL.Query().Get("d"))
	if err != nil || d < 0 || d > time.Minute {
		http.Error(w, "d: a duration up to 1m", http.StatusBadRequest)
		return 0, false
	}
	return d, true
}
