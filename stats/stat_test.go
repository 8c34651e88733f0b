package stats

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRoundTripAndZeroTimestamp(t *testing.T) {
	in := Stat{Instance: "i", AverageConcurrency: 1.25, AverageProxiedConcurrency: 0.5,
		RequestCount: 3, ProxiedRequestCount: 1, ProcessUptime: 9, Timestamp: time.Unix(5, 0).UTC()}
	var b bytes.Buffer
	require.NoError(t, Encode(&b, in))
	assert.LessOrEqual(t, b.Len(), MaxEncodedSize, "encoded size")
	out, err := Decode(&b)
	require.NoError(t, err)
	require.Equal(t, in, out)

	// A zero Timestamp is left out ("now" to the receiver) and reads back zero.
	b.Reset()
	require.NoError(t, Encode(&b, Stat{Instance: "i"}))
	assert.NotContains(t, b.String(), "timestamp", "a zero timestamp is left out")
	out, err = Decode(&b)
	require.NoError(t, err)
	assert.True(t, out.Timestamp.IsZero(), "Timestamp %v", out.Timestamp)
}

func TestDecodeRejects(t *testing.T) {
	for name, body := range map[string]string{
		"empty":          "",
		"not JSON":       "<html>",
		"wrong type":     `{"averageConcurrency":"high"}`,
		"out of range":   `{"averageConcurrency":1e999}`,
		"negative":       `{"requestCount":-1}`,
		"over the bound": `{"instance":"` + strings.Repeat("x", MaxEncodedSize) + `"}`,
	} {
		_, err := Decode(strings.NewReader(body))
		if assert.Error(t, err, name) {
			assert.True(t, strings.HasPrefix(err.Error(), "stats: decode: "), "%s: %v", name, err)
		}
	}
}

func TestEncodeRejectsNonFinite(t *testing.T) {
	// JSON has no NaN: a bad reporter gets an error, not a corrupt body.
	assert.Error(t, Encode(&bytes.Buffer{}, Stat{AverageConcurrency: math.NaN()}), "Encode(NaN)")
}
