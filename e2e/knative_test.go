package e2e_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/knative"
)

// buildCLI builds cmd/zeroscale once per test binary run (linking it
// takes seconds); TestMain removes it at the end (removeCLI).
func buildCLI(t *testing.T) string {
	t.Helper()
	bin, err := cliBuild()
	require.NoError(t, err)
	return bin
}

var cliDir string // where cliBuild put the binary

var cliBuild = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "zeroscale-e2e-cli")
	if err != nil {
		return "", err
	}
	cliDir = dir
	bin := filepath.Join(dir, "zeroscale")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/zeroscale/zeroscale/cmd/zeroscale").CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build cmd/zeroscale: %w\n%s", err, out)
	}
	return bin, nil
})

func removeCLI() {
	if cliDir != "" {
		_ = os.RemoveAll(cliDir)
	}
}

// cli is a running "zeroscale serve" and the way to run the other
// commands against it.
type cli struct {
	t     *testing.T
	bin   string
	data  string // host:port of the data listener
	admin string // http://host:port of the admin API

	serve  *exec.Cmd
	mu     sync.Mutex
	output bytes.Buffer // serve's stdout and stderr
	lines  chan string  // serve's stdout
}

var servingLine = regexp.MustCompile(`^Serving namespace 'default' at http://(\S+), admin API at (http://\S+)$`)

// startServe runs "zeroscale serve -f dir" on ephemeral loopback ports.
func startServe(t *testing.T, bin, dir string, extra ...string) *cli {
	c := &cli{t: t, bin: bin, lines: make(chan string, 100)}
	args := append([]string{"serve", "-f", dir, "--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0", "--watch-interval", "100ms"}, extra...)
	c.serve = exec.Command(bin, args...)
	stdout, err := c.serve.StdoutPipe()
	require.NoError(t, err)
	c.serve.Stderr = &lockedWriter{mu: &c.mu, w: &c.output}
	require.NoError(t, c.serve.Start())
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			c.mu.Lock()
			c.output.WriteString(sc.Text() + "\n")
			c.mu.Unlock()
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		close(c.lines)
	}()
	t.Cleanup(func() {
		if c.serve.ProcessState == nil {
			_ = c.serve.Process.Kill()
			_ = c.serve.Wait()
		}
		if t.Failed() || testing.Verbose() {
			c.mu.Lock()
			t.Logf("zeroscale serve output:\n%s", c.output.String())
			c.mu.Unlock()
		}
	})
	deadline := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			require.True(t, ok, "zeroscale serve exited before serving")
			if m := servingLine.FindStringSubmatch(line); m != nil {
				c.data, c.admin = m[1], m[2]
				return c
			}
		case <-deadline:
			t.Fatal("zeroscale serve did not start within 60s")
		}
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// run runs "zeroscale args..." against the server and returns its
// stdout, stderr and exit code.
func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--admin", c.admin}, args...)...) // a later --admin wins
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		c.t.Fatalf("zeroscale %v: %v", args, err)
	}
	return out.String(), errb.String(), code
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errOut, code := c.run(args...)
	require.Equal(c.t, 0, code, "zeroscale %s\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), out, errOut)
	return out
}

// curl GETs path on host (a service or tag host) through the data
// listener.
func (c *cli) curl(host, path string) (int, string) {
	c.t.Helper()
	req, err := http.NewRequest("GET", "http://"+c.data+path, nil)
	require.NoError(c.t, err)
	req.Host = host
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	require.NoError(c.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(c.t, err)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (c *cli) revision(name string) knative.Revision {
	c.t.Helper()
	var r knative.Revision
	require.NoError(c.t, json.Unmarshal([]byte(c.ok("revision", "describe", name, "-o", "json")), &r))
	return r
}

// row returns the fields of the table line whose first column is name.
func row(table, name string) []string {
	for line := range strings.SplitSeq(table, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return f
		}
	}
	return nil
}

const helloManifest = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers:
        - CONTAINER
          env:
            - name: TARGET
              value: TARGET_VALUE
APP_ENV`

// processManifest is helloManifest running this test binary as a local
// process (internal/testapp).
func processManifest(t *testing.T) func(target string) string {
	spec := appSpec(t)
	var env strings.Builder
	for _, e := range spec.Env {
		fmt.Fprintf(&env, "            - name: %s\n              value: %q\n", e.Name, e.Value)
	}
	return func(target string) string {
		m := strings.Replace(helloManifest, "CONTAINER", fmt.Sprintf("command: [%q]", spec.Command[0]), 1)
		m = strings.Replace(m, "APP_ENV", env.String(), 1)
		return strings.Replace(m, "TARGET_VALUE", target, 1)
	}
}

// appFlags are the CLI flags that run this test binary as
// internal/testapp in o's variation (see appSpecWith).
func appFlags(t *testing.T, o testapp.Options) []string {
	spec := appSpecWith(t, o)
	flags := []string{"--cmd", spec.Command[0]}
	for _, e := range spec.Env {
		flags = append(flags, "--env", e.Name+"="+e.Value)
	}
	return flags
}

// TestKnativeTutorialFlow drives the built binary through what the
// Knative tutorials teach, on the process backend: a Service from a
// manifest, at zero; a request served from zero; a changed file
// re-applied (new revision); an env update (new revision, traffic
// moves); a 50/50 split with a tag reached at the tag's URL; revisions
// listed with their traffic; delete. And the exit codes scripts rely
// on.
func TestKnativeTutorialFlow(t *testing.T) {
	bin := buildCLI(t)
	dir := t.TempDir()
	manifest := processManifest(t)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "hello.yaml"), []byte(manifest("one")), 0o644))
	c := startServe(t, bin, dir)
	tutorialFlow(t, c, filepath.Join(dir, "hello.yaml"), manifest, "/", func() {
		// Exit codes and errors a script can rely on.
		_, errOut, code := c.run("service", "describe", "nope")
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, `Error: services.serving.knative.dev "nope" not found`)
		bad := filepath.Join(t.TempDir(), "bad.yaml")
		require.NoError(t, os.WriteFile(bad, []byte(strings.Replace(manifest("x"), "      containers:", "      containerConcurency: 3\n      containers:", 1)), 0o644))
		_, errOut, code = c.run("service", "apply", "-f", bad)
		assert.Equal(t, 1, code)
		assert.Contains(t, errOut, "unknown field: spec.template.spec.containerConcurency")
		_, errOut, code = c.run("service", "update", "hello", "--traffic", "old=40")
		assert.Equal(t, 2, code, errOut)
		assert.Contains(t, errOut, "sum to 40, want 100")
		_, _, code = c.run("service", "lisst")
		assert.Equal(t, 2, code)
		_, errOut, code = c.run("service", "list", "--admin", "http://127.0.0.1:1")
		assert.Equal(t, 3, code)
		assert.Contains(t, errOut, "no zeroscale server answers")
	})
}

// tutorialFlow is the flow of TestKnativeTutorialFlow on c, whose serve
// watches file (holding manifest("one")), for an app that answers its
// revision's name at path. more runs before the delete.
func tutorialFlow(t *testing.T, c *cli, file string, manifest func(string) string, path string, more func()) {
	host := "hello.default.localhost"

	// Created from the manifest, at zero.
	out := c.ok("service", "list")
	r := row(out, "hello")
	require.NotNil(t, r, out)
	assert.Equal(t, []string{"hello", "http://" + host + ":" + strings.Split(c.data, ":")[1], "hello-00001"}, r[:3])
	assert.Equal(t, int32(0), *c.revision("hello-00001").Status.ActualReplicas, "at zero")

	// Served from zero.
	code, body := c.curl(host, path)
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "hello-00001", body)

	// The file changes: re-applied, a new revision takes the traffic.
	require.NoError(t, os.WriteFile(file, []byte(manifest("two")), 0o644))
	require.EventuallyWithT(t, func(ct *assert.CollectT) {
		_, body := c.curl(host, path)
		assert.Equal(ct, "hello-00002", body)
	}, 120*time.Second, 100*time.Millisecond)

	// kn service update --env: a new revision, traffic moves.
	out = c.ok("service", "update", "hello", "--env", "TARGET=three")
	assert.Contains(t, out, "Updating Service 'hello' in namespace 'default':\n\n")
	assert.Regexp(t, `(?m)^ +\d+\.\d{3}s Ready to serve\.$`, out)
	assert.Contains(t, out, "Service 'hello' updated to latest revision 'hello-00003' is available at URL:\nhttp://"+host)
	_, body = c.curl(host, path)
	assert.Equal(t, "hello-00003", body)
	assert.Equal(t, "three", c.revision("hello-00003").Spec.Containers[0].Env[0].Value)

	// 50/50 with a tag; the tag has its own URL.
	out = c.ok("service", "update", "hello", "--tag", "hello-00002=old", "--traffic", "old=50,@latest=50")
	assert.Contains(t, out, "Service 'hello' with latest revision 'hello-00003' (unchanged) is available at URL:")
	_, body = c.curl("old-"+host, path)
	assert.Equal(t, "hello-00002", body, "the tag's URL reaches its revision")
	seen := map[string]int{}
	for range 60 {
		_, body := c.curl(host, path)
		seen[body]++
	}
	assert.Positive(t, seen["hello-00002"], "%v", seen)
	assert.Positive(t, seen["hello-00003"], "%v", seen)
	assert.Len(t, seen, 2, "%v", seen)

	// Revisions listed with their traffic and tags, as kn revision list.
	out = c.ok("revision", "list")
	assert.Equal(t, []string{"NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "AGE", "CONDITIONS", "READY", "REASON"}, strings.Fields(strings.SplitN(out, "\n", 2)[0]))
	assert.Equal(t, []string{"hello-00003", "hello", "50%", "3"}, row(out, "hello-00003")[:4], out)
	assert.Equal(t, []string{"hello-00002", "hello", "50%", "old", "2"}, row(out, "hello-00002")[:5], out)
	assert.Equal(t, []string{"hello-00001", "hello", "1"}, row(out, "hello-00001")[:3], out)

	// A revision with traffic is not deleted; one without is.
	_, errOut, code := c.run("revision", "delete", "hello-00002")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "receives traffic")
	assert.Contains(t, c.ok("revision", "delete", "hello-00001"), "Revision 'hello-00001' deleted in namespace 'default'.")

	more()

	// Delete: the host answers 404, nothing is left.
	assert.Contains(t, c.ok("service", "delete", "hello"), "Service 'hello' successfully deleted in namespace 'default'.")
	code, _ = c.curl(host, path)
	assert.Equal(t, http.StatusNotFound, code)
	assert.Equal(t, "No services found.\n", c.ok("service", "list"))
	assert.Equal(t, "No revisions found.\n", c.ok("revision", "list"))

	// SIGTERM: a clean exit.
	require.NoError(t, c.serve.Process.Signal(syscall.SIGTERM))
	require.NoError(t, c.serve.Wait())
}

// TestCLICreateFromFlags: kn service create with flags, the progress
// lines, and the manifest it made.
func TestCLICreateFromFlags(t *testing.T) {
	bin := buildCLI(t)
	c := startServe(t, bin, t.TempDir())
	out := c.ok(append([]string{"service", "create", "echo"}, append(appFlags(t, testapp.Options{}),
		"--scale-max", "3", "--concurrency-limit", "10", "--timeout", "60")...)...)
	assert.True(t, strings.HasPrefix(out, "Creating service 'echo' in namespace 'default':\n\n"), out)
	assert.Regexp(t, `(?m)^ +\d+\.\d{3}s Ready to serve\.$`, out)
	assert.Contains(t, out, "Service 'echo' created to latest revision 'echo-00001' is available at URL:\nhttp://echo.default.localhost:")
	_, body := c.curl("echo.default.localhost", "/")
	assert.Equal(t, "echo-00001", body)
	assert.Regexp(t, `Ready to serve\.\nService 'echo' in namespace 'default' is ready\.\n$`, c.ok("service", "wait", "echo"))

	var ks knative.Service
	require.NoError(t, json.Unmarshal([]byte(c.ok("service", "describe", "echo", "-o", "json")), &ks))
	assert.Equal(t, "3", ks.Spec.Template.Annotations["autoscaling.knative.dev/max-scale"])
	assert.Equal(t, int64(10), *ks.Spec.Template.Spec.ContainerConcurrency)
	assert.Equal(t, int64(60), *ks.Spec.Template.Spec.TimeoutSeconds)
	assert.Equal(t, "http://echo.default.localhost:"+strings.Split(c.data, ":")[1], strings.TrimSpace(c.ok("service", "describe", "echo", "-o", "url")))

	_, errOut, code := c.run("service", "create", "echo", "--cmd", appSpec(t).Command[0])
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "already exists and no --force option was given")

	// An app that crashes at start: the wait ends with Knative's
	// RevisionFailed and the app's last output, exit code 1.
	out, errOut, code = c.run(append([]string{"service", "create", "crash"}, appFlags(t, testapp.Options{Mode: testapp.Crash})...)...)
	assert.Equal(t, 1, code, "%s\n%s", out, errOut)
	assert.Contains(t, errOut, `Error: RevisionFailed: Revision "crash-00001" failed with message: `)
	assert.Contains(t, errOut, "fatal: boom")
	assert.Contains(t, out, "Creating service 'crash' in namespace 'default':")

	// An app that never listens: --wait-timeout ends the wait, exit 4.
	out, errOut, code = c.run("service", "create", "mute", "--cmd", "sleep", "--arg", "600", "--wait-timeout", "1")
	assert.Equal(t, 4, code, "%s\n%s", out, errOut)
	assert.Contains(t, errOut, "Error: timeout: service 'mute' not ready after 1 seconds")
	c.ok("service", "delete", "mute")
}

// TestCLIToken: with a token, the admin API answers only requests that
// carry it.
func TestCLIToken(t *testing.T) {
	c := startServe(t, buildCLI(t), t.TempDir(), "--token", "s3cret")
	_, errOut, code := c.run("service", "list")
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut, "Authorization: Bearer")
	assert.Equal(t, "No services found.\n", c.ok("service", "list", "--token", "s3cret"))
}
