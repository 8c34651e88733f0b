package autoscaler_test

import (
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/revision"
)

// Drive the KPA by hand, as a unit test of a scaling policy would: resolve
// the parameters, then feed observed window averages and ready counts.
func ExampleKPA() {
	// containerConcurrency 10 → total 10, target 10 × 70 % = 7 per instance.
	params, err := autoscaler.DefaultConfig().Resolve(revision.Spec{ContainerConcurrency: 10})
	if err != nil {
		panic(err)
	}
	now := time.Unix(1_700_000_000, 0)
	kpa, err := autoscaler.NewKPA(params, now, 0)
	if err != nil {
		panic(err)
	}
	steps := []autoscaler.Observed{
		{Stable: 0, Panic: 0, Serving: 0},   // idle at zero
		{Stable: 5, Panic: 5, Serving: 1},   // one instance is enough
		{Stable: 20, Panic: 40, Serving: 2}, // a burst: ceil(40/7)/2 = 3 ≥ 200 % → panic
		{Stable: 15, Panic: 5, Serving: 6},  // load falls, but no scale-down in panic
		{Stable: 14.3, Panic: 0, Serving: 6},
	}
	for _, o := range steps {
		r := kpa.Decide(now, o)
		fmt.Printf("stable %4.1f panic %4.1f serving %d → desired %d, panic %v, EBC %d\n",
			o.Stable, o.Panic, o.Serving, r.DesiredScale, r.Panicking, r.ExcessBurstCapacity)
		now = now.Add(autoscaler.TickInterval)
	}
	// A stable window (60 s) after the last burst tick the panic ends.
	now = now.Add(time.Minute)
	r := kpa.Decide(now, autoscaler.Observed{Stable: 14.3, Panic: 14, Serving: 6})
	fmt.Printf("a minute later → desired %d, panic %v\n", r.DesiredScale, r.Panicking)
	// Output:
	// stable  0.0 panic  0.0 serving 0 → desired 0, panic false, EBC -211
	// stable  5.0 panic  5.0 serving 1 → desired 1, panic false, EBC -206
	// stable 20.0 panic 40.0 serving 2 → desired 6, panic true, EBC -231
	// stable 15.0 panic  5.0 serving 6 → desired 6, panic true, EBC -156
	// stable 14.3 panic  0.0 serving 6 → desired 6, panic true, EBC -151
	// a minute later → desired 3, panic false
}
