package main

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/dockertest"
)

// TestRun builds hello static, runs the example with -import on the
// real engine, wakes hello from zero with one request, and shuts down:
// no container of the example's identity is left.
func TestRun(t *testing.T) {
	env := dockertest.Setup(t.Context())
	t.Cleanup(func() { env.Cleanup(context.Background()) })
	env.Need(t)
	bin := filepath.Join(t.TempDir(), "hello")
	require.NoError(t, dockertest.BuildStatic(t.Context(), bin, "github.com/zeroscale/zeroscale/examples/docker/hello"))

	identity := env.Identity()
	c := config{addr: "127.0.0.1:0", image: "zeroscale-test/hello:" + env.RunID, importPath: bin,
		identity: identity, port: 8080, window: 6 * time.Second, grace: time.Second, verbose: true}
	t.Cleanup(func() {
		_, _ = env.Client.ImageRemove(context.Background(), c.image, client.ImageRemoveOptions{Force: true})
	})
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var out dockertest.Buffer
	addrs := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, c, &out, func(a string) { addrs <- a }) }()
	var addr string
	select {
	case addr = <-addrs:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, out.String())
	case <-time.After(2 * time.Minute):
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
	assert.True(t, strings.HasPrefix(string(body), "Hello from hello-00001 in container "), "%q", body)

	cancel()
	require.NoError(t, <-done)
	left, err := env.Containers(t.Context(), identity)
	require.NoError(t, err)
	assert.Empty(t, left, "no container outlives the example")
	assert.Contains(t, out.String(), "imported "+bin)
	assert.Contains(t, out.String(), "hello-00001 listening on :8080", "-v shows the container's output")
	t.Log(out.String())
}
