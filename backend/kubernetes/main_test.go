package kubernetes_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/signal"
	"syscall"
	"testing"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/internal/k8slab"
)

// Images the lab node runs: the test binary itself as the app, and the
// real cmd/queue-proxy as the sidecar.
const (
	appImage   = "zeroscale.test/backendtest-app:1"
	queueImage = "zeroscale.test/queue-proxy:1"
	appEnv     = "ZEROSCALE_K8S_TEST_APP"
	bindEnv    = "ZEROSCALE_K8S_TEST_BIND"
)

var lab = &k8slab.Lab{Prepare: func(o *k8slab.Options) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "k8s-images-")
	if err != nil {
		return err
	}
	qp, err := k8slab.BuildQueueProxy(dir)
	if err != nil {
		return err
	}
	o.Images = map[string]k8slab.Image{
		appImage:   {Entrypoint: []string{exe}, Env: []string{appEnv + "=1"}, Overrides: []string{bindEnv + "=$(POD_IP)"}},
		queueImage: {Entrypoint: []string{qp}, Overrides: []string{"QUEUE_BIND_HOST=$(POD_IP)", "USER_HOST=$(POD_IP)"}},
	}
	return nil
}}

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) == "1" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		if err := backendtest.ServeApp(ctx, net.JoinHostPort(os.Getenv(bindEnv), os.Getenv("PORT"))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	code := m.Run()
	lab.Stop()
	os.Exit(code)
}
