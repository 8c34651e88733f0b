package e2e_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestKnativeTutorialFlowDocker is TestKnativeTutorialFlow with the
// same manifest shape giving an image: zeroscale serve runs it on the
// local Docker Engine. The image is the run's sample app
// (internal/dockertest); the containers carry an identity of this run,
// and none may outlive serve.
func TestKnativeTutorialFlowDocker(t *testing.T) {
	env := needDocker(t)
	id := env.Identity()
	manifest := func(target string) string {
		m := strings.Replace(helloManifest, "CONTAINER", "image: "+env.Image, 1)
		m = strings.Replace(m, "APP_ENV", "", 1) // the image runs the app as it is
		return strings.Replace(m, "TARGET_VALUE", target, 1)
	}
	bin := buildCLI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "hello.yaml")
	require.NoError(t, os.WriteFile(file, []byte(manifest("one")), 0o644))
	c := startServe(t, bin, dir, "--docker-identity", id)
	tutorialFlow(t, c, file, manifest, "/rev", func() {
		running, err := env.Containers(context.Background(), id)
		require.NoError(t, err)
		assert.NotEmpty(t, running, "the revisions run as containers")
	})
	left, err := env.Containers(context.Background(), id)
	require.NoError(t, err)
	assert.Empty(t, left, "no container outlives zeroscale serve")
}
