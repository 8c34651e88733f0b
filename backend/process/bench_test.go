package process_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/queueproxy"
)

// BenchmarkColdStart measures one instance from Scale(1) to its Ready
// snapshot (start-ms) and, within that, from the app listening (its
// "listening" line) to the Ready snapshot (detect-ms, the readiness
// probing's share of a cold start), as medians.
func BenchmarkColdStart(b *testing.B) {
	b.Run("direct", func(b *testing.B) { benchColdStart(b, process.Options{}) })
	b.Run("queueproxy", func(b *testing.B) {
		benchColdStart(b, process.Options{Proxy: process.QueueProxy(queueproxy.Options{})})
	})
}

func benchColdStart(b *testing.B, opts process.Options) {
	var mu sync.Mutex
	var listened time.Time
	opts.OutputFunc = func(_, _, line string) {
		if strings.HasPrefix(line, "listening") {
			mu.Lock()
			listened = time.Now()
			mu.Unlock()
		}
	}
	be, err := process.New(opts)
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	rev, err := appRevision("bench-00001", testapp.Serve)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := be.Deploy(ctx, rev); err != nil {
		b.Fatal(err)
	}
	ch, err := be.Watch(ctx, rev.Name())
	if err != nil {
		b.Fatal(err)
	}
	<-ch
	var starts, detects []float64
	for b.Loop() {
		t0 := time.Now()
		if err := be.Scale(ctx, rev.Name(), 1); err != nil {
			b.Fatal(err)
		}
		for snap := range ch {
			if len(snap) == 1 && snap[0].Ready {
				break
			}
		}
		ready := time.Now()
		mu.Lock()
		detects = append(detects, float64(ready.Sub(listened))/1e6)
		mu.Unlock()
		starts = append(starts, float64(ready.Sub(t0))/1e6)
		if err := be.Scale(ctx, rev.Name(), 0); err != nil {
			b.Fatal(err)
		}
		for snap := range ch {
			if len(snap) == 0 {
				break
			}
		}
	}
	b.ReportMetric(median(starts), "start-ms")
	b.ReportMetric(median(detects), "detect-ms")
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
