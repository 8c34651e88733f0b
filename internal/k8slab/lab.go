package k8slab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/internal/testenv"
)

// Lab is a test package's control plane: started on the first Cluster
// call, shared by the package's tests, stopped by Stop in TestMain:
//
//	var lab = &k8slab.Lab{Options: k8slab.Options{Images: images}}
//
//	func TestMain(m *testing.M) {
//		code := m.Run()
//		lab.Stop()
//		os.Exit(code)
//	}
type Lab struct {
	Options Options
	// Prepare, when set, runs once before the start (after the binaries
	// were found), e.g. to build images into Options.Images.
	Prepare func(*Options) error

	once    sync.Once
	cluster *Cluster
	err     error
}

// StartTimeout bounds a Lab's start.
const StartTimeout = 3 * time.Minute

// Cluster returns the running control plane, starting it if needed. When
// the binaries are missing it ends t through testenv.Unavailable (skip
// on a developer's machine, fail under CI=true); any other start
// failure fails t.
func (l *Lab) Cluster(t testing.TB) *Cluster {
	t.Helper()
	l.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
		defer cancel()
		if l.err = haveBinaries(l.Options.BinDir); l.err != nil {
			return
		}
		if l.Prepare != nil {
			if l.err = l.Prepare(&l.Options); l.err != nil {
				return
			}
		}
		l.cluster, l.err = Start(ctx, l.Options)
	})
	switch {
	case errors.Is(l.err, ErrNoBinaries):
		testenv.Unavailable(t, "no Kubernetes control plane: %v", l.err)
	case l.err != nil:
		t.Fatalf("k8slab: %v", l.err)
	}
	return l.cluster
}

// Namespace creates a namespace for t, deleted when t ends; after a
// failure it logs the tails of the Runtime's and controllers' logs.
func (l *Lab) Namespace(t testing.TB) string {
	t.Helper()
	c := l.Cluster(t)
	ns, del, err := c.Namespace(context.Background(), t.Name())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			c.KeepDir()
			t.Logf("k8slab: logs kept in %s", c.Dir)
		}
		del()
	})
	return ns
}

// Stop stops the control plane if it was started and removes
// Options.ImageDir.
func (l *Lab) Stop() {
	if l.cluster != nil {
		l.cluster.Stop()
	}
	if l.Options.ImageDir != "" {
		_ = os.RemoveAll(l.Options.ImageDir)
	}
}

// BuildQueueProxy builds cmd/queue-proxy into dir and returns its path.
func BuildQueueProxy(dir string) (string, error) {
	out := filepath.Join(dir, "queue-proxy")
	cmd := exec.Command("go", "build", "-o", out, "github.com/zeroscale/zeroscale/cmd/queue-proxy")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("k8slab: go build cmd/queue-proxy: %w\n%s", err, b)
	}
	return out, nil
}

// SelfImages returns a Lab.Prepare that builds cmd/queue-proxy as the
// image queue and makes each image of apps run the test binary itself
// with that image's environment added. Every process learns its pod IP
// from bindEnv (the app should listen there) and the sidecar binds the
// pod IP and reaches the app there (see Image.Overrides).
func SelfImages(queue, bindEnv string, apps map[string][]string) func(*Options) error {
	return func(o *Options) error {
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		dir, err := os.MkdirTemp("", "k8slab-images-")
		if err != nil {
			return err
		}
		o.ImageDir = dir
		qp, err := BuildQueueProxy(dir)
		if err != nil {
			return err
		}
		o.Images = map[string]Image{
			queue: {Entrypoint: []string{qp}, Overrides: []string{"QUEUE_BIND_HOST=$(POD_IP)", "USER_HOST=$(POD_IP)"}},
		}
		for name, env := range apps {
			o.Images[name] = Image{Entrypoint: []string{exe}, Env: env, Overrides: []string{bindEnv + "=$(POD_IP)"}}
		}
		return nil
	}
}
