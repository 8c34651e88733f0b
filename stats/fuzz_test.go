package stats

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzDecode feeds arbitrary scrape bodies (a queue-proxy is outside
// input to the autoscaler): no input panics, and a Stat that decodes has
// finite, non-negative figures and survives Encode → Decode unchanged.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(`{"instance":"a","averageConcurrency":1.5,"requestCount":3,"timestamp":"2026-01-01T00:00:00Z"}`))
	f.Add([]byte(`{"averageConcurrency":-1}`))
	f.Add([]byte(`{"averageConcurrency":1e308,"requestCount":1e308}`))
	f.Add([]byte(`{"timestamp":"0001-01-01T00:00:00Z"}`))
	f.Add([]byte(`{} {}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		s, err := Decode(bytes.NewReader(body))
		if err != nil {
			require.Equal(t, Stat{}, s)
			return
		}
		for name, v := range map[string]float64{
			"averageConcurrency":        s.AverageConcurrency,
			"averageProxiedConcurrency": s.AverageProxiedConcurrency,
			"requestCount":              s.RequestCount,
			"proxiedRequestCount":       s.ProxiedRequestCount,
			"processUptime":             s.ProcessUptime,
		} {
			require.False(t, math.IsNaN(v) || math.IsInf(v, 0) || v < 0, "%s = %v accepted", name, v)
		}
		var buf bytes.Buffer
		require.NoError(t, Encode(&buf, s))
		s2, err := Decode(&buf)
		require.NoError(t, err)
		require.True(t, s.Timestamp.Equal(s2.Timestamp))
		s.Timestamp = s2.Timestamp // equal instants, maybe another location
		require.Equal(t, s, s2)
	})
}
