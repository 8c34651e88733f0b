package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMain lets the test binary be the instances' app, as the example
// binary is.
func TestMain(m *testing.M) {
	if os.Getenv(appEnv) != "" {
		serveApp()
		return
	}
	os.Exit(m.Run())
}

// TestRun runs the example on real processes: 90/10 split, the tagged
// preview reachable only on its own host.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(&out))
	got := out.String()
	t.Log("\n" + got)
	for _, want := range []string{
		" 90 × hello-00001 says hello",
		" 10 × hello-00002 says bonjour",
		"preview-hello.default.localhost: hello-00003 says hallo",
		"hello-00003    0 %  tag=preview  http://preview-hello.default.localhost",
	} {
		assert.Contains(t, got, want)
	}
}
