package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend/process/activation"
	"github.com/zeroscale/zeroscale/internal/otelenv"
	"github.com/zeroscale/zeroscale/revision"
)

const appEnv = "ZEROSCALE_QUICKSTART_APP"

func main() {
	if os.Getenv(appEnv) == "1" {
		runApp()
		return
	}
	addr := flag.String("addr", "127.0.0.1:8080", "where requests are served")
	admin := flag.String("admin", "127.0.0.1:8081", "where status is served as JSON")
	window := flag.Duration("window", 60*time.Second, "stable window: idle this long before scaling to zero starts (6s–1h)")
	grace := flag.Duration("grace", 30*time.Second, "scale-to-zero grace period after the window")
	verbose := flag.Bool("v", false, "show the app's output")
	flag.Parse()

	exe, err := os.Executable()
	if err != nil {
		log.Fatal(err)
	}
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // start at zero
	cfg.StableWindow, cfg.ScaleToZeroGracePeriod = *window, *grace
	opts := zeroscale.Options{
		Config: cfg, Addr: *addr, AdminAddr: *admin,
		OnEvent: func(e zeroscale.Event) {
			if e.Kind != zeroscale.EventRevisionCreated {
				fmt.Printf("%s  %s\n", e.Time.Format("15:04:05.000"), e)
			}
		},
	}
	if *verbose {
		opts.Process.Output = os.Stdout
	}
	// Traces go to an OTLP collector when the standard variables name
	// one (e.g. OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318);
	// without them there is no tracing at all.
	tp, err := otelenv.TracerProvider(context.Background(), "zeroscale-quickstart")
	if err != nil {
		log.Fatal(err)
	}
	if tp != nil {
		opts.TracerProvider = tp
	}
	srv, err := zeroscale.New(opts)
	if err != nil {
		log.Fatal(err)
	}
	// Bind before printing where to go: a taken port fails here, not
	// after the instructions.
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatalf("%v (pick another port with -addr)", err)
	}
	adminLn, err := net.Listen("tcp", *admin)
	if err != nil {
		log.Fatalf("%v (pick another port with -admin)", err)
	}
	// The bound addresses, so -addr 127.0.0.1:0 prints the port taken.
	dataAddr, adminAddr := ln.Addr().String(), adminLn.Addr().String()
	_, port, _ := net.SplitHostPort(dataAddr)
	fmt.Printf("hello is at %s:%s (0 instances until the first request)\n\n", "http://hello.default.localhost", port)
	fmt.Printf("  curl http://hello.default.localhost:%s/\n", port)
	fmt.Printf("  curl -H 'Host: hello.default.localhost' http://%s/   # if your curl does not resolve *.localhost\n", dataAddr)
	fmt.Printf("  curl http://%s/hello/                                # the same, by path\n", dataAddr)
	fmt.Printf("  curl http://%s/services/hello                        # status\n", adminAddr)
	fmt.Printf("  curl http://%s/metrics                               # Prometheus metrics\n", adminAddr)
	fmt.Printf("  open http://%s/                                      # live status page\n", adminAddr)
	if tp != nil {
		fmt.Println("  traces: to the OTLP collector of OTEL_EXPORTER_OTLP_*")
	}
	fmt.Println()
	_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{
		Name: "hello",
		Template: revision.Spec{
			Command: []string{exe},
			Env:     []revision.EnvVar{{Name: appEnv, Value: "1"}},
			// The app is handed its listening socket: the first request
			// waits in the kernel's accept queue while it starts.
			SocketActivation: true,
		},
	})
	if err != nil {
		log.Fatal(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 2)
	go func() { errc <- srv.Serve(ln) }()
	go func() { errc <- srv.ServeAdmin(adminLn) }()
	select {
	case err := <-errc:
		log.Fatal(err)
	case <-ctx.Done():
	}
	fmt.Println("shutting down: draining requests and stopping instances")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = srv.Shutdown(shutdownCtx)
	if tp != nil {
		_ = tp.Shutdown(shutdownCtx) // sends the last spans
	}
	if err != nil {
		log.Fatal(err)
	}
}

// runApp is the sample app: one instance, listening on $PORT.
func runApp() {
	rev := os.Getenv("K_REVISION")
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s (pid %d)!\n", rev, os.Getpid())
	})
	// The socket the process backend passes (Spec.SocketActivation),
	// or its own on $PORT when run without it.
	ln, err := activation.Listen("127.0.0.1:" + os.Getenv("PORT"))
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("%s listening on %s", rev, ln.Addr())
	log.Fatal(http.Serve(ln, nil))
}
