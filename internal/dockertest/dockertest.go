// Package dockertest gives tests that need a Docker Engine the sample
// app (internal/testapp) as an image, built static and imported with no
// base image and no registry, and cleans up after them: every image and
// container a run creates carries the run's unique prefix, and only
// those are removed, so test runs sharing one engine leave each other
// alone.
package dockertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/moby/moby/client"

	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/internal/testenv"
)

// Env is one test binary's use of the engine.
type Env struct {
	// RunID prefixes every identity and image of the run.
	RunID string
	// Image is the sample app's image, "zeroscale-test/app:<RunID>".
	Image string
	// Binary is the same app as a local executable (for comparisons
	// with backend/process), removed by Cleanup.
	Binary string
	// Client talks to the engine.
	Client *client.Client
	// Err is why the engine or the image is unavailable (nil if ready).
	Err error
}

// Setup connects to the engine (client.FromEnv), builds internal/testapp
// with CGO_ENABLED=0 and imports it as Image. Failures are kept in Err
// for Need to report, so TestMain can call it unconditionally.
func Setup(ctx context.Context) *Env {
	var b [4]byte
	_, _ = rand.Read(b[:])
	e := &Env{RunID: "zst" + hex.EncodeToString(b[:])}
	e.Err = e.setup(ctx)
	return e
}

func (e *Env) setup(ctx context.Context) error {
	var err error
	e.Client, err = client.New(client.FromEnv)
	if err != nil {
		return err
	}
	if _, err := e.Client.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("no Docker engine at %s: %w", e.Client.DaemonHost(), err)
	}
	dir, err := os.MkdirTemp("", "zeroscale-dockertest")
	if err != nil {
		return err
	}
	bin := filepath.Join(dir, "app")
	e.Binary = bin
	if err := BuildStatic(ctx, bin, "github.com/zeroscale/zeroscale/internal/testapp/cmd"); err != nil {
		return err
	}
	e.Image = "zeroscale-test/app:" + e.RunID
	_, err = docker.ImportBinary(ctx, e.Client, e.Image, bin)
	return err
}

// BuildStatic builds the main package pkg with CGO_ENABLED=0 into out.
func BuildStatic(ctx context.Context, out, pkg string) error {
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %w\n%s", pkg, err, b)
	}
	return nil
}

// Need ends t (skip; fail under CI=true) when the engine or the image
// is unavailable.
func (e *Env) Need(t testing.TB) {
	t.Helper()
	if e.Err != nil {
		testenv.Unavailable(t, "Docker engine or test image unavailable: %v", e.Err)
	}
}

// Identity returns a new identity of this run.
func (e *Env) Identity() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return e.RunID + "-" + hex.EncodeToString(b[:])
}

// Cleanup removes every container whose identity starts with RunID
// (whatever a failed test left) and the run's image.
func (e *Env) Cleanup(ctx context.Context) {
	if e.Binary != "" {
		_ = os.RemoveAll(filepath.Dir(e.Binary))
	}
	if e.Client == nil {
		return
	}
	res, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelIdentity)})
	if err == nil {
		for _, c := range res.Items {
			if strings.HasPrefix(c.Labels[docker.LabelIdentity], e.RunID) {
				_, _ = e.Client.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
	}
	if e.Image != "" {
		_, _ = e.Client.ImageRemove(ctx, e.Image, client.ImageRemoveOptions{Force: true})
	}
	_ = e.Client.Close()
}

// Containers lists the IDs of the containers with identity id.
func (e *Env) Containers(ctx context.Context, id string) ([]string, error) {
	res, err := e.Client.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelIdentity+"="+id)})
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids, nil
}

// Buffer is a bytes.Buffer safe for concurrent writers, for capturing a
// backend's or a Server's output in tests.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
