package stats

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func TestRoundTripAndZeroTimestamp(t *testing.T) {
	in := Stat{Instance: "i", AverageConcurrency: 1.25, AverageProxiedConcurrency: 0.5,
		RequestCount: 3, ProxiedRequestCount: 1, ProcessUptime: 9, Timestamp: time.Unix(5, 0).UTC()}
	var b bytes.Buffer
	if err := Encode(&b, in); err != nil {
		t.Fatal(err)
	}
	if b.Len() > MaxEncodedSize {
		t.Errorf("encoded stat is %d bytes, over MaxEncodedSize", b.Len())
	}
	out, err := Decode(&b)
	if err != nil || out != in {
		t.Fatalf("Decode = %+v, %v; want %+v", out, err, in)
	}

	// A zero Timestamp is left out ("now" to the receiver) and reads back zero.
	b.Reset()
	if err := Encode(&b, Stat{Instance: "i"}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "timestamp") {
		t.Errorf("zero timestamp encoded: %s", b.String())
	}
	if out, err := Decode(&b); err != nil || !out.Timestamp.IsZero() {
		t.Errorf("Decode = %+v, %v; want a zero timestamp", out, err)
	}
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
		if _, err := Decode(strings.NewReader(body)); err == nil || !strings.HasPrefix(err.Error(), "stats: decode: ") {
			t.Errorf("%s: Decode error = %v, want a stats: decode error", name, err)
		}
	}
}

func TestEncodeRejectsNonFinite(t *testing.T) {
	// JSON has no NaN: a bad reporter gets an error, not a corrupt body.
	if err := Encode(&bytes.Buffer{}, Stat{AverageConcurrency: math.NaN()}); err == nil {
		t.Error("Encode(NaN) succeeded")
	}
}
