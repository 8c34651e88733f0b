package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/revision"
)

// config is the example's flags.
type config struct {
	addr, image, importPath, identity string
	port                              int
	window, grace                     time.Duration
	verbose                           bool
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:8080", "where requests are served")
	flag.StringVar(&c.image, "image", "zeroscale-example/hello:1", "the image each instance runs")
	flag.StringVar(&c.importPath, "import", "", "a static binary to import as -image first (built with CGO_ENABLED=0)")
	flag.StringVar(&c.identity, "identity", "zeroscale-example-docker", "this host's identity label: a restart removes what a killed run left")
	flag.IntVar(&c.port, "port", 8080, "the port the app listens on in the container ($PORT)")
	flag.DurationVar(&c.window, "window", 60*time.Second, "stable window: idle this long before scaling to zero starts (6s–1h)")
	flag.DurationVar(&c.grace, "grace", 30*time.Second, "scale-to-zero grace period after the window")
	flag.BoolVar(&c.verbose, "v", false, "show the containers' output")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves hello on the Docker backend until ctx is done, then shuts
// down (draining requests, removing every container). ready, when set,
// is called with the address requests are served on.
func run(ctx context.Context, c config, out io.Writer, ready func(addr string)) error {
	if c.importPath != "" {
		id, err := docker.ImportBinary(ctx, nil, c.image, c.importPath)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "imported %s as %s (%.19s)\n", c.importPath, c.image, id)
	}
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // start at zero
	cfg.StableWindow, cfg.ScaleToZeroGracePeriod = c.window, c.grace
	do := docker.Options{Identity: c.identity}
	if c.verbose {
		do.Output = out
	}
	srv, err := zeroscale.New(zeroscale.Options{
		Config:            cfg,
		NewProxiedBackend: docker.ServerFactory(do),
		OnEvent: func(e zeroscale.Event) {
			if e.Kind != zeroscale.EventRevisionCreated {
				fmt.Fprintf(out, "%s  %s\n", e.Time.Format("15:04:05.000"), e)
			}
		},
	})
	if err != nil {
		return err // the engine unreachable, say: the error names DOCKER_HOST
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
	if _, err := srv.Apply(ctx, zeroscale.ServiceSpec{
		Name:     "hello",
		Template: revision.Spec{Image: c.image, Port: c.port},
	}); err != nil {
		_ = shutdown()
		return err // the image missing, say: the error says how to build or load it
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		_ = shutdown()
		return fmt.Errorf("%w (pick another port with -addr)", err)
	}
	addr := ln.Addr().String()
	fmt.Fprintf(out, "hello runs %s at zero containers until the first request:\n\n", c.image)
	fmt.Fprintf(out, "  curl -H 'Host: hello.default.localhost' http://%s/\n\n", addr)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	if ready != nil {
		ready(addr)
	}
	select {
	case err := <-errc:
		_ = shutdown()
		return err
	case <-ctx.Done():
	}
	fmt.Fprintln(out, "shutting down: draining requests and removing containers")
	return shutdown()
}
