// Command testapp is the sample app the Docker tests and examples run as
// a container image: a static binary (CGO_ENABLED=0) imported as an image
// with docker.ImportBinary, so no base image or registry is needed.
//
// It serves backendtest.App (GET / answers "ok\n", /hold, /release) on
// :$PORT over HTTP/1.1 and h2c, plus:
//
//	GET /rev        $K_REVISION
//	GET /env?name=N the value of environment variable N
//	GET /sleep?d=D  answers after D (at most 1m)
//	GET /alloc?mb=N allocates and holds N MiB more (1–1024)
//	GET /crash      exits with code 4
//
// and shuts down gracefully on SIGTERM. TESTAPP_MODE=crash makes it
// print two lines and exit 3 at once; TESTAPP_MODE=hang makes it never
// listen. TESTAPP_DELAY=D delays listening by D; TESTAPP_HOST=H listens
// on H only.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/process/activation"
)

func main() { os.Exit(run()) }

func run() int {
	fmt.Println("app starting")
	switch os.Getenv("TESTAPP_MODE") {
	case "crash":
		fmt.Fprintln(os.Stderr, "fatal: boom")
		return 3
	case "hang":
		for { // not select{}: the runtime would exit on the deadlock
			time.Sleep(time.Hour)
		}
	}
	if d, err := time.ParseDuration(os.Getenv("TESTAPP_DELAY")); err == nil {
		time.Sleep(d)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	// TESTAPP_HOST narrows the listener (to 127.0.0.1 when it runs as a
	// local process); in a container it listens on all its interfaces.
	// The inherited socket under socket activation (process backend,
	// Spec.SocketActivation), else its own.
	ln, err := activation.Listen(os.Getenv("TESTAPP_HOST") + ":" + os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rev := os.Getenv("K_REVISION")
	mux := http.NewServeMux()
	mux.Handle("/", backendtest.App())
	mux.HandleFunc("GET /rev", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, rev) })
	mux.HandleFunc("GET /env", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, os.Getenv(r.URL.Query().Get("name")))
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d < 0 || d > time.Minute {
			http.Error(w, "d: a duration up to 1m", http.StatusBadRequest)
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
	var hog [][]byte
	mux.HandleFunc("GET /alloc", func(w http.ResponseWriter, r *http.Request) {
		mb, err := strconv.Atoi(r.URL.Query().Get("mb"))
		if err != nil || mb < 1 || mb > 1024 {
			http.Error(w, "mb: 1–1024", http.StatusBadRequest)
			return
		}
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
		os.Exit(4)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, Protocols: new(http.Protocols)}
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	go func() {
		<-ctx.Done()
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
	return 0
}
