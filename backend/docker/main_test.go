package docker_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/internal/dockertest"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// The test image is this repository's internal/testapp, built static and
// imported by internal/dockertest: the engine needs no base image and no
// registry. Only this run's containers and image are cleaned up.
var (
	env       *dockertest.Env
	testImage string
	cli       *client.Client
)

// hostEnv makes the test binary run as a host process (see runHost)
// instead of the tests.
const hostEnv = "ZEROSCALE_DOCKER_TEST_HOST"

func TestMain(m *testing.M) {
	if id := os.Getenv(hostEnv); id != "" {
		os.Exit(runHost(id, os.Getenv("ZEROSCALE_DOCKER_TEST_IMAGE")))
	}
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		env = dockertest.Setup(ctx)
		testImage, cli = env.Image, env.Client
		defer func() {
			// A context of its own: the run may outlast setup's.
			cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			env.Cleanup(cctx)
		}()
		return m.Run()
	}()
	os.Exit(code)
}

// needEngine ends t (skip, or fail under CI) when there is no engine.
func needEngine(t testing.TB) {
	t.Helper()
	env.Need(t)
}

// identity is a unique identity for one test of this run.
func identity(testing.TB) string { return env.Identity() }

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
	ids, err := env.Containers(t.Context(), id)
	require.NoError(t, err)
	return ids
}

// runHost is a host process for TestKilledHostLeavesNoContainers: a
// Backend with identity id running one instance of image; it prints
// "ready" once both instances are ready and blocks until killed.
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
	for {
		st, err := b.Status(ctx, rev.Name())
		if err == nil && len(st.Instances) == 2 && st.Instances[0].Ready && st.Instances[1].Ready {
			fmt.Println("ready")
			select {}
		}
		time.Sleep(10 * time.Millisecond) // polling in a helper process that is killed anyway
	}
}

// testQueueProxy fronts instances in the tests: no drain quiet period,
// as no load balancer needs time to stop sending (the suite's DrainFunc
// stands for one that already has).
var testQueueProxy = queueproxy.Options{DrainQuietPeriod: -1}
