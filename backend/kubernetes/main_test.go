package kubernetes_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/internal/k8slab"
)

// Images the lab node runs: the test binary itself as the app, and the
// real cmd/queue-proxy as the sidecar.
const (
	appImage   = "zeroscale.test/backendtest-app:1"
	e2eImage   = "zeroscale.test/e2e-app:1"
	queueImage = "zeroscale.test/queue-proxy:1"
	appEnv     = "ZEROSCALE_K8S_TEST_APP"
	bindEnv    = "ZEROSCALE_K8S_TEST_BIND"
)

var lab = &k8slab.Lab{Prepare: k8slab.SelfImages(queueImage, bindEnv, map[string][]string{
	appImage: {appEnv + "=1"},
	e2eImage: {appEnv + "=e2e", "GORACE=atexit_sleep_ms=0"},
})}

func TestMain(m *testing.M) {
	if mode := os.Getenv(appEnv); mode != "" {
		os.Exit(runApp(mode))
	}
	code := m.Run()
	lab.Stop()
	os.Exit(code)
}

// runApp serves the app of an image on the pod IP (bindEnv) and $PORT
// until SIGTERM: backendtest's App ("1"), or for the e2e tests GET /
// answering "$K_REVISION\n" and GET /sleep?d=5s answering after d.
func runApp(mode string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	addr := net.JoinHostPort(os.Getenv(bindEnv), os.Getenv("PORT"))
	var err error
	if mode == "1" {
		err = backendtest.ServeApp(ctx, addr)
	} else {
		err = serveE2E(ctx, addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func serveE2E(ctx context.Context, addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	rev := os.Getenv("K_REVISION")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, rev+"\n")
	})
	mux.HandleFunc("GET /sleep", func(w http.ResponseWriter, r *http.Request) {
		d, err := time.ParseDuration(r.URL.Query().Get("d"))
		if err != nil || d > time.Minute {
			http.Error(w, "d: a duration up to 1m", http.StatusBadRequest)
			return
		}
		select {
		case <-time.After(d):
			_, _ = io.WriteString(w, rev+" slept "+d.String()+"\n")
		case <-r.Context().Done():
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	<-done
	return nil
}
