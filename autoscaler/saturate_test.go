package autoscaler

import (
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Out-of-range inputs saturate rather than wrap: Go's conversion of a
// float64 beyond int's range is implementation-defined (math.MinInt on
// amd64), which turned a huge demand into a scale of 1 and a huge excess
// burst capacity into a negative one.
func TestKPAHugeInputsSaturate(t *testing.T) {
	for _, tc := range []struct {
		name      string
		upRate    float64
		o         Observed
		scale     int
		ebc       int
		panicking bool
	}{
		{"huge demand, huge up rate", 1e300, Observed{Stable: 1e300, Panic: 1e300, Serving: 1}, math.MaxInt, math.MinInt, true},
		{"huge demand, rate-limited", 1000, Observed{Stable: 1e300, Panic: 1e300, Serving: 1}, 1000, math.MinInt, true},
		{"huge ready count", 1000, Observed{Stable: 5, Panic: 5, Serving: math.MaxInt}, math.MaxInt, math.MaxInt, true},
		{"negative ready count", 1000, Observed{Stable: 5, Panic: 5, Serving: -5}, 1, -205, false},
		{"not finite", 1000, Observed{Stable: math.NaN(), Panic: math.Inf(1), Serving: 3}, 3, -170, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams()
			p.TargetBurstCapacity = 200
			p.MaxScaleUpRate = tc.upRate
			p.ScaleDownDelay = 10 * time.Second
			k, err := NewKPA(p, t0, tc.o.Serving)
			require.NoError(t, err)
			r := k.Decide(t0.Add(TickInterval), tc.o)
			if r.DesiredScale != tc.scale || r.ExcessBurstCapacity != tc.ebc || r.Panicking != tc.panicking {
				t.Fatalf("Decide(%+v) = %+v, want scale %d, EBC %d, panicking %v", tc.o, r, tc.scale, tc.ebc, tc.panicking)
			}
		})
	}
	p := testParams()
	p.TotalValue, p.InitialScale, p.TargetBurstCapacity = 1e300, 1<<40, 200
	if got := initialEBC(p); got != math.MaxInt {
		t.Errorf("initialEBC of a huge total = %d, want math.MaxInt", got)
	}
}
