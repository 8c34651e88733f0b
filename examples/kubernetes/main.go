package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/kubernetes"
	"github.com/zeroscale/zeroscale/revision"
)

// config is the example's flags.
type config struct {
	addr, kubeconfig, namespace, image, queueImage string
	port                                           int
	window, grace, quiet                           time.Duration
	rest                                           *rest.Config // set by tests instead of kubeconfig
}

func main() {
	var c config
	flag.StringVar(&c.addr, "addr", "127.0.0.1:8080", "where requests are served")
	flag.StringVar(&c.kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, else $KUBECONFIG or ~/.kube/config)")
	flag.StringVar(&c.namespace, "namespace", "", "namespace of the Deployments (default: the kubeconfig context's)")
	flag.StringVar(&c.image, "image", "", "the app's image; the app listens on $PORT (required)")
	flag.StringVar(&c.queueImage, "queue-proxy-image", "", "an image of cmd/queue-proxy (required)")
	flag.IntVar(&c.port, "port", 8080, "the port the app listens on ($PORT)")
	flag.DurationVar(&c.window, "window", 60*time.Second, "stable window: idle this long before scaling to zero starts (6s–1h)")
	flag.DurationVar(&c.grace, "grace", 30*time.Second, "scale-to-zero grace period after the window")
	flag.DurationVar(&c.quiet, "quiet-period", 30*time.Second, "how long a terminating pod keeps serving after its last request")
	flag.Parse()
	if c.image == "" || c.queueImage == "" {
		log.Fatal("-image and -queue-proxy-image are required")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c, os.Stdout, nil); err != nil {
		log.Fatal(err)
	}
}

// run serves hello on the Kubernetes backend until ctx is done, then
// shuts down (draining requests, deleting the Deployments it made).
// ready, when set, is called with the address requests are served on.
func run(ctx context.Context, c config, out io.Writer, ready func(addr string)) error {
	// The activator proves itself to the sidecars with a shared secret;
	// in production put it in a Secret and use ValueFrom instead.
	raw := make([]byte, 16)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	secret := hex.EncodeToString(raw)
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // start at zero
	cfg.StableWindow, cfg.ScaleToZeroGracePeriod = c.window, c.grace
	srv, err := zeroscale.New(zeroscale.Options{
		Config: cfg,
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			return kubernetes.New(kubernetes.Options{
				Config:          c.rest,
				Kubeconfig:      c.kubeconfig,
				Namespace:       c.namespace,
				QueueProxyImage: c.queueImage,
				QueueProxyEnv:   []corev1.EnvVar{{Name: "ACTIVATOR_SECRET", Value: secret}},
				QuietPeriod:     c.quiet,
				Drain:           drain,
			})
		},
		ScrapeStats:     true, // the queue-proxy runs in the pod: scrape it
		ActivatorSecret: secret,
		OnEvent: func(e zeroscale.Event) {
			if e.Kind != zeroscale.EventRevisionCreated {
				fmt.Fprintf(out, "%s  %s\n", e.Time.Format("15:04:05.000"), e)
			}
		},
	})
	if err != nil {
		return err
	}
	shutdown := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		return srv.Shutdown(sctx)
	}
	if _, err := srv.Apply(ctx, zeroscale.ServiceSpec{
		Name:     "hello",
		Template: revision.Spec{Image: c.image, Port: c.port},
	}); err != nil {
		_ = shutdown()
		return err
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		_ = shutdown()
		return fmt.Errorf("%w (pick another port with -addr)", err)
	}
	addr := ln.Addr().String()
	fmt.Fprintf(out, "hello runs %s at zero pods until the first request:\n\n", c.image)
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
	fmt.Fprintln(out, "shutting down: draining requests and deleting the Deployments")
	return shutdown()
}
