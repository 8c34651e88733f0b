package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/internal/testenv"
)

// TestKnativeTutorialFlowDocker is TestKnativeTutorialFlow with the
// same manifest shape giving an image: zeroscale serve runs it on the
// local Docker Engine. The image is this repository's internal/testapp,
// built static and imported (no base image, no registry); every
// container the run creates carries its own identity, and only those
// and the run's image are removed.
func TestKnativeTutorialFlowDocker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cli, err := client.New(client.FromEnv)
	if err == nil {
		_, err = cli.Ping(ctx, client.PingOptions{NegotiateAPIVersion: true})
	}
	if err != nil {
		testenv.Unavailable(t, "no Docker Engine: %v", err)
	}
	defer cli.Close()
	var b [4]byte
	_, _ = rand.Read(b[:])
	runID := "zse2e" + hex.EncodeToString(b[:])

	app := filepath.Join(t.TempDir(), "app")
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", app, "github.com/zeroscale/zeroscale/internal/testapp")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := build.CombinedOutput()
	require.NoError(t, err, "go build internal/testapp: %s", out)
	image := "zeroscale-e2e/app:" + runID
	_, err = docker.ImportBinary(ctx, cli, image, app)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
			Filters: make(client.Filters).Add("label", docker.LabelIdentity+"="+runID)})
		if err == nil {
			for _, c := range res.Items {
				_, _ = cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
			}
		}
		_, _ = cli.ImageRemove(ctx, image, client.ImageRemoveOptions{Force: true})
	})

	manifest := func(target string) string {
		m := strings.Replace(helloManifest, "CONTAINER", "image: "+image, 1)
		return strings.Replace(m, "TARGET_VALUE", target, 1)
	}
	bin := buildCLI(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "hello.yaml")
	require.NoError(t, os.WriteFile(file, []byte(manifest("one")), 0o644))
	c := startServe(t, bin, dir, "--docker-identity", runID)
	tutorialFlow(t, c, file, manifest, "/rev", func() {
		res, err := cli.ContainerList(ctx, client.ContainerListOptions{
			Filters: make(client.Filters).Add("label", docker.LabelIdentity+"="+runID)})
		require.NoError(t, err)
		assert.NotEmpty(t, res.Items, "the revisions run as containers")
	})
	res, err := cli.ContainerList(ctx, client.ContainerListOptions{All: true,
		Filters: make(client.Filters).Add("label", docker.LabelIdentity+"="+runID)})
	require.NoError(t, err)
	assert.Empty(t, res.Items, "no container outlives zeroscale serve")
}
