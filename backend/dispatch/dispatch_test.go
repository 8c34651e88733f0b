package dispatch_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/dispatch"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// TestContract runs the Backend contract through the dispatcher, once
// for revisions that go to the image engine and once for the command
// engine.
func TestContract(t *testing.T) {
	for name, spec := range map[string]revision.Spec{
		"image":   {Image: "backendtest-app"},
		"command": {Command: []string{"backendtest-app"}},
	} {
		t.Run(name, func(t *testing.T) {
			backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
				clk := clocktesting.NewFakeClock(time.Unix(1_700_000_000, 0))
				engines := map[string]*fake.Backend{}
				for _, e := range []string{"docker", "process"} {
					b, err := fake.New(fake.Options{
						Clock:        clk,
						Handler:      func(revision.Revision) http.Handler { return backendtest.App() },
						StartDelay:   500 * time.Millisecond,
						Seed:         1,
						Drain:        cfg.Drain,
						DrainTimeout: time.Hour,
					})
					require.NoError(t, err)
					engines[e] = b
				}
				d, err := dispatch.New(
					dispatch.Engine{Name: "docker", Runs: dispatch.HasImage, Backend: engines["docker"]},
					dispatch.Engine{Name: "process", Runs: dispatch.CommandOnly, Backend: engines["process"]},
				)
				require.NoError(t, err)
				t.Cleanup(func() { _ = d.Close() })
				return backendtest.Harness{
					Backend: d,
					Spec:    spec,
					Crash: func(_ context.Context, inst backend.Instance) error {
						for _, b := range engines {
							if err := b.Kill(inst.ID); err == nil {
								return nil
							}
						}
						return backend.ErrNotDeployed
					},
					Advance: func() {
						if clk.HasWaiters() {
							clk.Step(250 * time.Millisecond)
						}
					},
				}
			})
		})
	}
}

func newFake(t *testing.T, max int) *fake.Backend {
	b, err := fake.New(fake.Options{MaxInstances: max})
	require.NoError(t, err)
	return b
}

func rev(t *testing.T, name string, spec revision.Spec) revision.Revision {
	r, err := revision.New("hello", name, 1, spec, time.Now())
	require.NoError(t, err)
	return r
}

func TestRoutesBySpec(t *testing.T) {
	ctx := context.Background()
	img, proc := newFake(t, 20), newFake(t, 100)
	d, err := dispatch.New(
		dispatch.Engine{Name: "docker", Runs: dispatch.HasImage, Backend: img},
		dispatch.Engine{Name: "process", Runs: dispatch.CommandOnly, Backend: proc},
	)
	require.NoError(t, err)
	require.NoError(t, d.Deploy(ctx, rev(t, "hello-00001", revision.Spec{Image: "hello:1"})))
	require.NoError(t, d.Deploy(ctx, rev(t, "hello-00002", revision.Spec{Command: []string{"./hello"}})))
	require.NoError(t, d.Scale(ctx, "hello-00001", 1))
	require.NoError(t, d.Scale(ctx, "hello-00002", 2))

	st, err := img.Status(ctx, "hello-00001")
	require.NoError(t, err, "the image revision runs on the image engine")
	_, err = proc.Status(ctx, "hello-00001")
	require.ErrorIs(t, err, backend.ErrNotDeployed)
	dst, err := d.Status(ctx, "hello-00001")
	require.NoError(t, err)
	assert.Equal(t, st.Revision, dst.Revision, "Status delegated")
	_, err = proc.Status(ctx, "hello-00002")
	require.NoError(t, err, "the command revision runs on the process engine")

	assert.Equal(t, 20, d.MaxInstances(), "the smallest cap")
	require.ErrorIs(t, d.Scale(ctx, "nope", 1), backend.ErrNotDeployed)
	_, err = d.Watch(ctx, "nope")
	require.ErrorIs(t, err, backend.ErrNotDeployed)

	require.NoError(t, d.Remove(ctx, "hello-00001"))
	require.ErrorIs(t, d.Remove(ctx, "hello-00001"), backend.ErrNotDeployed, "forgotten once removed")
	require.NoError(t, d.Close())
	require.Error(t, img.Deploy(ctx, rev(t, "hello-00003", revision.Spec{Image: "x"})), "Close stopped the engines")
}

func TestMissingEngine(t *testing.T) {
	ctx := context.Background()
	proc := newFake(t, 0)
	d, err := dispatch.New(
		dispatch.Engine{Name: "docker", Runs: dispatch.HasImage, Missing: errors.New("no Docker Engine at unix:///var/run/docker.sock")},
		dispatch.Engine{Name: "process", Runs: dispatch.CommandOnly, Backend: proc},
	)
	require.NoError(t, err)
	defer d.Close()
	err = d.Deploy(ctx, rev(t, "hello-00001", revision.Spec{Image: "hello:1"}))
	require.ErrorIs(t, err, backend.ErrInvalidArgument)
	assert.EqualError(t, err, "revision hello-00001 needs the docker engine, which is not available: no Docker Engine at unix:///var/run/docker.sock: invalid argument")
	require.NoError(t, d.Deploy(ctx, rev(t, "hello-00002", revision.Spec{Command: []string{"./hello"}})), "the other engine still works")
	assert.Equal(t, proc.MaxInstances(), d.MaxInstances(), "a missing engine has no cap")
}

func TestNewValidates(t *testing.T) {
	runs := dispatch.HasImage
	for _, engines := range [][]dispatch.Engine{
		nil,
		{{Runs: runs, Missing: errors.New("x")}},
		{{Name: "a", Missing: errors.New("x")}},
		{{Name: "a", Runs: runs}},
		{{Name: "a", Runs: runs, Missing: errors.New("x")}, {Name: "a", Runs: runs, Missing: errors.New("y")}},
	} {
		_, err := dispatch.New(engines...)
		assert.ErrorIs(t, err, backend.ErrInvalidArgument, "%+v", engines)
	}
}
