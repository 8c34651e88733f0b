package autoscaler_test

import (
	"context"
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// A host wires the Multiscaler: it deploys revisions, passes each
// Decision's Scale to its backend, and feeds ready instances back. Here a
// revision starts at zero and the activator's first report wakes it
// without waiting for the 2 s tick.
func ExampleMultiscaler() {
	decisions := make(chan autoscaler.Decision, 8)
	m, err := autoscaler.New(autoscaler.Options{
		// A real host calls backend.Scale(ctx, d.Revision, d.Scale) from
		// its own goroutine, and moves the activator in or out of the
		// path with d.ActivatorInPath.
		Publisher: autoscaler.PublisherFunc(func(d autoscaler.Decision) { decisions <- d }),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Run(ctx)

	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale = true
	zero := 0
	params, err := cfg.Resolve(revision.Spec{Scaling: revision.Scaling{InitialScale: &zero}})
	if err != nil {
		panic(err)
	}
	if err := m.Set("hello-00001", autoscaler.Revision{Params: params, Source: autoscaler.Pushed}); err != nil {
		panic(err)
	}
	d := <-decisions
	fmt.Println(d.Revision, d.Scale, d.State, d.Reason, d.ActivatorInPath)

	// The activator buffers a request and reports it (the collector is
	// its stats.Reporter): an immediate decision follows.
	var reporter stats.Reporter = m.Reporter()
	reporter.Report("hello-00001", stats.Stat{Instance: "activator", AverageConcurrency: 1, RequestCount: 1})
	d = <-decisions
	fmt.Println(d.Revision, d.Scale, d.State, d.Reason, d.ActivatorInPath)
	// Output:
	// hello-00001 0 Inactive NoTraffic true
	// hello-00001 1 Activating Queued true
}

func ExampleConfig_Resolve() {
	cfg := autoscaler.DefaultConfig()
	spec := revision.Spec{
		Image:                "ghcr.io/example/hello:1",
		ContainerConcurrency: 10,
		Scaling:              revision.Scaling{Window: new(30 * time.Second)},
	}
	p, err := cfg.Resolve(spec)
	if err != nil {
		panic(err)
	}
	fmt.Println("target per instance:", p.TargetValue)
	fmt.Println("windows:", p.StableWindow, p.PanicWindow, "panic at", p.PanicThreshold, "× target")
	// Output:
	// target per instance: 7
	// windows: 30s 3s panic at 2 × target
}
