package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale/internal/k8slab"
)

const (
	appImage   = "zeroscale.test/hello:1"
	queueImage = "zeroscale.test/queue-proxy:1"
	appEnv     = "ZEROSCALE_EXAMPLE_K8S_APP"
)

// The lab node runs this test binary as the hello image and the real
// cmd/queue-proxy as the sidecar.
var lab = &k8slab.Lab{Prepare: k8slab.SelfImages(queueImage, "BIND", map[string][]string{appImage: {appEnv + "=1"}})}

func TestMain(m *testing.M) {
	if os.Getenv(appEnv) != "" {
		os.Exit(hello())
	}
	code := m.Run()
	lab.Stop()
	os.Exit(code)
}

// hello is the image's app: "Hello from <revision> in pod <name>".
func hello() int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", net.JoinHostPort(os.Getenv("BIND"), os.Getenv("PORT")))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "Hello from %s in pod %s\n", os.Getenv("K_REVISION"), os.Getenv("HOSTNAME"))
	})}
	go func() { <-ctx.Done(); _ = srv.Shutdown(context.Background()) }()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return 1
	}
	return 0
}

// TestRun runs the example against the lab cluster, wakes hello from
// zero with one request, and shuts down: its Deployment is gone.
func TestRun(t *testing.T) {
	c := lab.Cluster(t)
	ns := lab.Namespace(t)
	cfg := config{addr: "127.0.0.1:0", namespace: ns, image: appImage, queueImage: queueImage, port: 8080,
		window: 6 * time.Second, grace: time.Second, quiet: 2 * time.Second, rest: c.Config}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out syncBuffer
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, cfg, &out, func(a string) { addrs <- a }) }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out.String())
	case <-time.After(time.Minute):
		t.Fatal("the example did not start serving")
	}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+addr+"/", nil)
	require.NoError(t, err)
	req.Host = "hello.default.localhost"
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, strings.HasPrefix(string(body), "Hello from hello-00001 in pod hello-00001-"), "%q", body)
	cancel()
	require.NoError(t, <-done, out.String())
	list, err := c.Client.AppsV1().Deployments(ns).List(t.Context(), metav1.ListOptions{})
	require.NoError(t, err)
	for _, d := range list.Items {
		assert.NotNil(t, d.DeletionTimestamp, "Deployment %s left behind", d.Name)
	}
	t.Log(out.String())
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
