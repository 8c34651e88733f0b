package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRun runs the example with 3 s phases: the custom policy (one
// instance per 4 requests in flight) scales the fake backend up from
// zero under 16 clients and back to zero when idle.
func TestRun(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 15 s")
	}
	var out bytes.Buffer
	require.NoError(t, run(&out, 3*time.Second))
	got := out.String()
	t.Log("\n" + got)
	assert.Contains(t, got, "work: 0 → 1 instances (cold start")
	assert.Regexp(t, `work: \d → [34] instances`, got, "16 clients / 4 per instance")
	assert.Regexp(t, `work: \d → 0 instances \(NoTraffic`, got)
}
