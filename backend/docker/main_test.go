package docker_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/internal/testenv"
	"github.com/zeroscale/zeroscale/revision"
)

// The test image is this repository's internal/testapp, built static by
// TestMain and imported with docker.ImportBinary: the engine needs no
// base image and no registry. Every container and image a run creates
// carries the run's unique prefix, and only those are cleaned up, so
// runs of other packages on the same engine are left alone.
var (
	runID     string // unique per test binary run
	testImage string // "zeroscale-test/app:<runID>"
	setupErr  error  // why the engine or the image is unavailable
	cli       *client.Client
)

// hostEnv makes the test binary run as a host process (see runHost)
// instead of the tests.
const hostEnv = "ZEROSCALE_DOCKER_TEST_HOST"

func TestMain(m *testing.M) {
	if id := os.Getenv(hostEnv); id != "" {
		os.Exit(runHost(id, os.Getenv("ZEROSCALE_DOCKER_TEST_IMAGE")))
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	runID = "zst" + hex.EncodeToString(b[:])
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		setupErr = setup(ctx)
		defer cleanup()
		return m.Run()
	}()
	os.Exit(code)
}

// setup connects to the engine, builds internal/testapp and imports it.
func setup(ctx context.Context) error {
	var err error
	cli, err = client.New(client.FromEnv)
	if err != nil {
		return err
	}
	if _, err := cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true}); err != nil {
		return fmt.Errorf("no Docker engine at %s: %w", cli.DaemonHost(), err)
	}
	dir, err := os.MkdirTemp("", "zeroscale-docker-test")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "app")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", bin, "github.com/zeroscale/zeroscale/internal/testapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build internal/testapp: %w\n%s", err, out)
	}
	testImage = "zeroscale-test/app:" + runID
	_, err = docker.ImportBinary(ctx, cli, testImage, bin)
	return err
}

// cleanup removes every container of this run (whatever a failed test
// left) and the run's image.
func cleanup() {
	if cli == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelIdentity)})
	if err == nil {
		for _, c := range res.Items {
			if strings.HasPrefix(c.Labels[docker.LabelIdentity], runID) {
				_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
	}
	if testImage != "" {
		_, _ = cli.ImageRemove(ctx, testImage, client.ImageRemoveOptions{Force: true})
	}
	_ = cli.Close()
}

// needEngine ends t (skip, or fail under CI) when there is no engine.
func needEngine(t testing.TB) {
	t.Helper()
	if setupErr != nil {
		testenv.Unavailable(t, "Docker engine or test image unavailable: %v", setupErr)
	}
}

// identity is a unique identity for one test of this run.
func identity(t testing.TB) string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return runID + "-" + hex.EncodeToString(b[:])
}

// eventTimeout bounds each wait on the engine: container starts on a
// loaded 2-core machine shared with other test runs.
const eventTimeout = 60 * time.Second

// newBackend is a Backend with a fresh identity, closed at cleanup.
func newBackend(t testing.TB, o docker.Options) *docker.Backend {
	t.Helper()
	needEngine(t)
	if o.Identity == "" {
		o.Identity = identity(t)
	}
	if o.StopGrace == 0 {
		o.StopGrace = 5 * time.Second
	}
	if o.DrainTimeout == 0 {
		o.DrainTimeout = 2 * eventTimeout
	}
	b, err := docker.New(t.Context(), o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// appSpec is a spec running the test image, modified by mods.
func appSpec(mods ...func(*revision.Spec)) revision.Spec {
	s := revision.Spec{Image: testImage}
	for _, m := range mods {
		m(&s)
	}
	return s
}

func withEnv(name, value string) func(*revision.Spec) {
	return func(s *revision.Spec) { s.Env = append(s.Env, revision.EnvVar{Name: name, Value: value}) }
}

func newRevision(t testing.TB, name string, spec revision.Spec) revision.Revision {
	t.Helper()
	cfg := name
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		cfg = name[:i]
	}
	rev, err := revision.New(cfg, name, 1, spec, time.Unix(0, 0))
	require.NoError(t, err)
	return rev
}

// ownContainers lists the engine's containers with identity id.
func ownContainers(t testing.TB, id string) []string {
	t.Helper()
	res, err := cli.ContainerList(t.Context(), client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelIdentity+"="+id)})
	require.NoError(t, err)
	var ids []string
	for _, c := range res.Items {
		ids = append(ids, c.ID)
	}
	return ids
}

// runHost is a host process for TestKilledHostLeavesNoContainers: a
// Backend with identity id running one instance of image; it prints
// "container <id>" once the instance is ready and blocks until killed.
func runHost(id, image string) int {
	ctx := context.Background()
	b, err := docker.New(ctx, docker.Options{Identity: id})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	rev, err := revision.New("host", "host-00001", 1, revision.Spec{Image: image}, time.Unix(0, 0))
	if err == nil {
		err = b.Deploy(ctx, rev)
	}
	if err == nil {
		err = b.Scale(ctx, rev.Name(), 2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	out := bufio.NewWriter(os.Stdout)
	for {
		st, err := b.Status(rev.Name())
		if err == nil && len(st.Instances) == 2 && st.Instances[0].Ready && st.Instances[1].Ready {
			for _, in := range st.Instances {
				fmt.Fprintln(out, "container", in.Container)
			}
			out.Flush()
			select {}
		}
		time.Sleep(10 * time.Millisecond) // polling in a helper process that is killed anyway
	}
}
