package aggregation_test

import (
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler/aggregation"
)

// Knative's linear window leaves the seconds since the last write out of
// the average instead of counting them as zeros.
func ExampleLinear() {
	w, _ := aggregation.NewLinear(5 * time.Second)
	t0 := time.Unix(1_700_000_000, 0)
	for i, v := range []float64{2, 4, 6, 8, 10} {
		w.Record(t0.Add(time.Duration(i)*time.Second), v)
	}
	fmt.Println(w.Average(t0.Add(4 * time.Second)))
	fmt.Println(w.Average(t0.Add(6 * time.Second))) // (6+8+10)/3
	fmt.Println(w.Average(t0.Add(9 * time.Second))) // a full window later
	// Output:
	// 6
	// 8
	// 0
}
