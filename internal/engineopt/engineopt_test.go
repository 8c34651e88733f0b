package engineopt

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/zeroscale/zeroscale/backend"
)

func TestDefaultsAndRefusals(t *testing.T) {
	var a, b time.Duration = 0, 3 * time.Second
	require.NoError(t, Durations("x", Duration{"A", &a, time.Second}, Duration{"B", &b, time.Minute}))
	require.Equal(t, time.Second, a, "zero takes the default")
	require.Equal(t, 3*time.Second, b, "a set value stays")

	neg := -time.Second
	require.EqualError(t, Durations("x", Duration{"A", &neg, time.Second}), "x: Options.A = -1s: want ≥ 0 (0 = default)")
	require.EqualError(t, Backoff("x", 2*time.Second, time.Second), "x: Options.MinRestartBackoff = 2s: want ≤ MaxRestartBackoff (1s)")
	require.NoError(t, Backoff("x", time.Second, time.Second))

	n := 0
	require.NoError(t, Count("x", "N", &n, 7))
	require.Equal(t, 7, n)
	n = -1
	require.EqualError(t, Count("x", "N", &n, 7), "x: Options.N = -1: want ≥ 0 (0 = 7)")
}

func TestReservedCount(t *testing.T) {
	for _, n := range []int{0, 1} {
		require.NoError(t, ReservedCount("docker", "hello-00001", n))
	}
	for _, n := range []int{-1, 2} {
		err := ReservedCount("docker", "hello-00001", n)
		require.ErrorIs(t, err, backend.ErrInvalidArgument)
		assert.ErrorContains(t, err, "docker: scale reserved hello-00001")
		assert.ErrorContains(t, err, "want 0 or 1")
	}
}
