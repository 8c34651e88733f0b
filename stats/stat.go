package stats

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// Stat is one instance's (or one activator's) report for one reporting
// period (1 s), Knative's autoscaler Stat.
type Stat struct {
	// Instance names the reporter (an instance ID, or an activator name).
	Instance string `json:"instance"`
	// AverageConcurrency is the time-weighted average number of requests
	// in flight or queued over the period.
	AverageConcurrency float64 `json:"averageConcurrency"`
	// AverageProxiedConcurrency is the part of AverageConcurrency that
	// came through the activator (already counted by it).
	AverageProxiedConcurrency float64 `json:"averageProxiedConcurrency"`
	// RequestCount is requests that arrived in the period, per second.
	RequestCount float64 `json:"requestCount"`
	// ProxiedRequestCount is the part of RequestCount that came through
	// the activator.
	ProxiedRequestCount float64 `json:"proxiedRequestCount"`
	// ProcessUptime is the reporter's uptime in seconds.
	ProcessUptime float64 `json:"processUptime"`
	// Timestamp is when the period ended. The zero value means "now"
	// to the receiver.
	Timestamp time.Time `json:"timestamp,omitzero"`
}

// Reporter receives stats for a revision. The autoscaler's collector
// implements it (pushes from in-process queue-proxies and activators);
// queueproxy and activator call it. Implementations must be safe for
// concurrent use and must not block.
type Reporter interface {
	Report(revision string, s Stat)
}

// ReporterFunc adapts a function to Reporter.
type ReporterFunc func(revision string, s Stat)

// Report calls f(revision, s).
func (f ReporterFunc) Report(revision string, s Stat) { f(revision, s) }

// The scrape wire format: a queue-proxy serves its latest Stat at Path on
// its metrics listener as one JSON object (the Stat field tags above)
// with Content-Type ContentType. Before its first period ends it answers
// 503. A scraper reads at most MaxEncodedSize bytes.
const (
	Path           = "/zeroscale/stat"
	ContentType    = "application/json"
	MaxEncodedSize = 4096
)

// Encode writes s in the wire format.
func Encode(w io.Writer, s Stat) error {
	return json.NewEncoder(w).Encode(s)
}

// Decode reads one Stat in the wire format, at most MaxEncodedSize bytes.
// It rejects a negative figure: a scraped instance is outside input, and
// one negative report would cancel out the others' load in the
// autoscaler's windows.
func Decode(r io.Reader) (Stat, error) {
	var s Stat
	dec := json.NewDecoder(io.LimitReader(r, MaxEncodedSize))
	if err := dec.Decode(&s); err != nil {
		return Stat{}, fmt.Errorf("stats: decode: %w", err)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"averageConcurrency", s.AverageConcurrency},
		{"averageProxiedConcurrency", s.AverageProxiedConcurrency},
		{"requestCount", s.RequestCount},
		{"proxiedRequestCount", s.ProxiedRequestCount},
		{"processUptime", s.ProcessUptime},
	} {
		if f.v < 0 {
			return Stat{}, fmt.Errorf("stats: decode: %s = %v: want ≥ 0", f.name, f.v)
		}
	}
	return s, nil
}
