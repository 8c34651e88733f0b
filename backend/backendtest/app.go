package backendtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// The test application's protocol. Every engine's instances must serve
// App (directly, or behind a proxy that passes requests through), so the
// suite can check that in-flight requests survive scale-down.
const (
	// PathOK answers 200 with body "ok\n".
	PathOK = "/"
	// PathHold (GET /hold?key=K) answers 200, writes and flushes "held\n",
	// then waits until key K is released and writes "released\n". It
	// gives up after MaxHold (writing "timeout\n") or when the client
	// goes away.
	PathHold = "/hold"
	// PathRelease (GET /release?key=K) releases key K: every hold of K in
	// flight completes, and later holds of K complete at once. It answers
	// 200 "ok\n".
	PathRelease = "/release"

	// PathCrash makes the app exit with code 3, as a crash would. The
	// app ServeApp serves does; the in-process App answers 501, as it
	// has no process of its own to end (its engine sets Harness.Crash).
	PathCrash = "/crash"

	// MaxHold bounds how long one hold waits for its release.
	MaxHold = 5 * time.Minute
	// maxKeys bounds the number of distinct keys one App remembers;
	// holds and releases of further keys get 503.
	maxKeys = 1024
)

// App returns a new instance of the suite's test application (see
// PathOK, PathHold, PathRelease). Each call has its own keys, as each
// instance is its own process or server.
func App() http.Handler {
	return newApp(nil)
}

// newApp returns App; exit, when set, ends the process on PathCrash.
func newApp(exit func(code int)) http.Handler {
	a := &app{keys: make(map[string]chan struct{})}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathOK+"{$}", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok\n")
	})
	mux.HandleFunc("GET "+PathHold, a.hold)
	mux.HandleFunc("GET "+PathRelease, a.release)
	mux.HandleFunc("GET "+PathCrash, func(w http.ResponseWriter, _ *http.Request) {
		if exit == nil {
			http.Error(w, "the in-process App cannot crash: set Harness.Crash", http.StatusNotImplemented)
			return
		}
		exit(3)
	})
	return mux
}

type app struct {
	mu   sync.Mutex
	keys map[string]chan struct{} // closed once released
}

// key returns the channel of r's key, creating it; nil when the key is
// missing or the table is full (the handler has then answered).
func (a *app) key(w http.ResponseWriter, r *http.Request) chan struct{} {
	k := r.URL.Query().Get("key")
	if k == "" {
		http.Error(w, "query parameter key is required", http.StatusBadRequest)
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	ch, ok := a.keys[k]
	if !ok {
		if len(a.keys) >= maxKeys {
			http.Error(w, fmt.Sprintf("too many keys (max %d)", maxKeys), http.StatusServiceUnavailable)
			return nil
		}
		ch = make(chan struct{})
		a.keys[k] = ch
	}
	return ch
}

func (a *app) hold(w http.ResponseWriter, r *http.Request) {
	ch := a.key(w, r)
	if ch == nil {
		return
	}
	fmt.Fprint(w, "held\n")
	http.NewResponseController(w).Flush()
	timer := time.NewTimer(MaxHold)
	defer timer.Stop()
	select {
	case <-ch:
		fmt.Fprint(w, "released\n")
	case <-timer.C:
		fmt.Fprint(w, "timeout\n")
	case <-r.Context().Done():
	}
}

func (a *app) release(w http.ResponseWriter, r *http.Request) {
	ch := a.key(w, r)
	if ch == nil {
		return
	}
	a.mu.Lock()
	select {
	case <-ch:
	default:
		close(ch)
	}
	a.mu.Unlock()
	fmt.Fprint(w, "ok\n")
}

// ServeApp serves App on addr (with PathCrash exiting the process) (e.g. ":"+os.Getenv("PORT")) until ctx is
// done, then shuts down gracefully. Engines that run instances out of
// process (a re-executed test binary, a container) can make this their
// instance's main.
func ServeApp(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return serveApp(ctx, ln, newApp(os.Exit))
}

// serveApp is ServeApp on a listener, serving h.
func serveApp(ctx context.Context, ln net.Listener, h http.Handler) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	shutdown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutdown)
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	})
	err := srv.Serve(ln)
	if errors.Is(err, http.ErrServerClosed) {
		<-shutdown // let in-flight requests finish before returning
		return nil
	}
	stop()
	return err
}
