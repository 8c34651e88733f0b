package process_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// niceOf reads a process's nice value from /proc (field 19 of stat).
func niceOf(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	require.NoError(t, err)
	// The command name (field 2) may hold spaces: count after its ")".
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	n, err := strconv.Atoi(fields[16])
	require.NoError(t, err)
	return n
}

// TestReservedInstanceRunsNiced: the reserved instance's process runs
// at the profile's nice value, the standard one at the host's.
func TestReservedInstanceRunsNiced(t *testing.T) {
	if base := niceOf(t, os.Getpid()); base >= 15 {
		t.Skipf("the test runs at nice %d: an unprivileged process cannot go back to 15", base)
	}
	b := newBackend(t, process.Options{})
	rev := deploy(t, b, "cheap-00001", testapp.Serve, func(s *revision.Spec) {
		s.Scaling.IdleMode = revision.IdleModeReserve
		s.Scaling.ReservedNice = new(15)
	})
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	<-ch
	require.NoError(t, b.ScaleReserved(t.Context(), rev.Name(), 1))
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	snap := next(t, ch, "2 ready", readyCount(2))
	st := status(t, b, rev.Name())
	base := niceOf(t, os.Getpid())
	var kinds []string
	for _, in := range st.Instances {
		pid := pidOf(in)
		require.NotZero(t, pid)
		want := base
		if in.Reserved {
			want = 15
			assert.Contains(t, in.ID, "-reserved-")
		}
		assert.Equal(t, want, niceOf(t, pid), "%s instance %s", in.Kind(), in.ID)
		kinds = append(kinds, in.Kind())
	}
	assert.ElementsMatch(t, []string{"standard", "reserved"}, kinds)
	for _, in := range snap {
		assert.Equal(t, "ok\n", get(t, "http://"+in.Address+"/"))
	}
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 0))
	snap = next(t, ch, "only the reserved one", func(s []backend.Instance) bool { return len(s) == 1 && s[0].Reserved })
	assert.True(t, snap[0].Serving())
}
