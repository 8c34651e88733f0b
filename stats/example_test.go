package stats_test

import (
	"bytes"
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/stats"
)

// A queue-proxy serves its latest Stat in the wire format; the
// autoscaler's scraper decodes it.
func Example() {
	var wire bytes.Buffer
	err := stats.Encode(&wire, stats.Stat{
		Instance:           "hello-00001-i1",
		AverageConcurrency: 2.5,
		RequestCount:       40,
		ProcessUptime:      12,
		Timestamp:          time.Date(2026, 1, 1, 0, 0, 1, 0, time.UTC),
	})
	if err != nil {
		panic(err)
	}
	fmt.Print(wire.String())

	s, err := stats.Decode(&wire)
	fmt.Println(s.Instance, s.AverageConcurrency, s.RequestCount, err)
	// Output:
	// {"instance":"hello-00001-i1","averageConcurrency":2.5,"averageProxiedConcurrency":0,"requestCount":40,"proxiedRequestCount":0,"processUptime":12,"timestamp":"2026-01-01T00:00:01Z"}
	// hello-00001-i1 2.5 40 <nil>
}

// In process, a reporter pushes stats through the Reporter interface; a
// function is enough.
func ExampleReporterFunc() {
	var r stats.Reporter = stats.ReporterFunc(func(revision string, s stats.Stat) {
		fmt.Printf("%s: concurrency %v from %s\n", revision, s.AverageConcurrency, s.Instance)
	})
	r.Report("hello-00001", stats.Stat{Instance: "activator", AverageConcurrency: 1, RequestCount: 1})
	// Output:
	// hello-00001: concurrency 1 from activator
}
