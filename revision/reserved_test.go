package revision

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReservedAnnotations(t *testing.T) {
	good := []struct {
		cpu, mem string
		milli    int64
		bytes    int64
		cpuBack  string
		memBack  string
	}{
		{"250m", "128Mi", 250, 128 << 20, "250m", "128Mi"},
		{"0.5", "1Gi", 500, 1 << 30, "500m", "1Gi"},
		{"2", "500M", 2000, 500e6, "2", "500000000"},
		{"10m", "6Mi", 10, 6 << 20, "10m", "6Mi"},
		{".25", "1.5Gi", 250, 3 << 29, "250m", "1536Mi"},
	}
	for _, g := range good {
		s, err := ParseAnnotations(map[string]string{ReservedCPUAnnotation: g.cpu, ReservedMemoryAnnotation: g.mem, ReservedNiceAnnotation: "19"})
		require.NoError(t, err, g.cpu+" "+g.mem)
		assert.Equal(t, g.milli, *s.ReservedCPUMillis, g.cpu)
		assert.Equal(t, g.bytes, *s.ReservedMemoryBytes, g.mem)
		anns := s.Annotations()
		assert.Equal(t, g.cpuBack, anns[ReservedCPUAnnotation])
		assert.Equal(t, g.memBack, anns[ReservedMemoryAnnotation])
		back, err := ParseAnnotations(anns)
		require.NoError(t, err)
		assert.Equal(t, s, back, "round trip of %v", anns)
	}

	var fe *FieldError
	for key, bads := range map[string][]string{
		ReservedCPUAnnotation:    {"5m", "0", "257", "1k", "-1", "1e3", "0.0001", "", "m", "1.5m"},
		ReservedMemoryAnnotation: {"5Mi", "2Ti", "1.5", "128mi", "-1Gi", "1e9", "Mi", "0.0000001Gi"},
		ReservedNiceAnnotation:   {"0", "20", "-5", "x"},
	} {
		for _, bad := range bads {
			_, err := ParseAnnotations(map[string]string{key: bad})
			require.ErrorAs(t, err, &fe, "%s: %q", key, bad)
			assert.Equal(t, key, fe.Field)
			assert.Contains(t, fe.Allowed, "[")
		}
	}
}

func TestReservedProfileDefaults(t *testing.T) {
	p := Scaling{}.Reserved(Resources{})
	assert.Equal(t, ReservedProfile{CPUMillis: DefaultReservedCPUMillis, Nice: DefaultReservedNice}, p)
	p = Scaling{}.Reserved(Resources{MemoryLimitBytes: 1 << 30})
	assert.Equal(t, int64(1<<30), p.MemoryBytes, "the standard limit when unset")
	s, err := ParseAnnotations(map[string]string{ReservedMemoryAnnotation: "64Mi", ReservedCPUAnnotation: "1", ReservedNiceAnnotation: "5"})
	require.NoError(t, err)
	assert.Equal(t, ReservedProfile{CPUMillis: 1000, MemoryBytes: 64 << 20, Nice: 5}, s.Reserved(Resources{MemoryLimitBytes: 1 << 30}))
}
