package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun runs the example: both revisions wake from zero to serve the
// split, and the retired one is gone.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	require.NoError(t, run(t.Context(), &out))
	got := out.String()
	t.Log("\n" + got)
	for _, want := range []string{
		`GET /healthz → 200 "ok\n"`,
		`→ 200 "hello-00001\n" (woken from zero)`,
		`→ 200 "hello-00002\n" (woken from zero)`,
		"hello-00001: 0 → 1 instances",
		"hello-00002: 0 → 1 instances",
		"hello-00002: 1 → 0 instances",
		"removed hello-00002; running [hello-00001]",
	} {
		assert.Contains(t, got, want)
	}
}
