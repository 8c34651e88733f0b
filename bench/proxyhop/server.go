package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	_ "net/http/pprof" // PROXYHOP_PPROF only: the default mux is served only then
	"os"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/revision"
)

// serverService is the service the "server" kind runs; serverHost is
// the Host the load generator sends so that the Server routes by host
// (no path prefix to strip, no ServiceHeader to remove).
const (
	serverService = "bench"
	serverHost    = serverService + ".default.localhost"
)

// runServer serves the front door a user runs: the root zeroscale.Server
// (activator, in-process queue-proxy, process backend) with one warm
// instance of this binary's upstream role (min- and max-scale 1, so the
// comparison with one app behind a plain ReverseProxy is like for like).
// The instance inherits this process's CPU pinning.
func runServer(ctx context.Context, ln net.Listener, cc int, delay time.Duration) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	srv, err := zeroscale.New(zeroscale.Options{})
	if err != nil {
		return err
	}
	one := 1
	if _, err := srv.Apply(ctx, zeroscale.ServiceSpec{
		Name: serverService,
		Template: revision.Spec{
			Command:              []string{exe, "-role=upstream", "-addr=", "-delay=" + delay.String()},
			ContainerConcurrency: cc,
			Scaling:              revision.Scaling{MinScale: &one, MaxScale: &one, InitialScale: &one},
		},
	}); err != nil {
		return err
	}
	if addr := os.Getenv("PROXYHOP_PPROF"); addr != "" {
		// For profiling the front door under load by hand:
		// go tool pprof http://$PROXYHOP_PPROF/debug/pprof/profile?seconds=10
		go func() { _ = http.ListenAndServe(addr, nil) }()
	}
	announce(ln)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := srv.Shutdown(sctx); err == nil || errors.Is(err, http.ErrServerClosed) {
		err = serr
	}
	return err
}
