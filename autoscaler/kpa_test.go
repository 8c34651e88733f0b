package autoscaler

import (
	"strings"
	"testing"
	"time"

	"github.com/zeroscale/zeroscale/revision"
)

var t0 = time.Unix(1_700_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

// testParams: target 10 per instance, total 10, Knative's other defaults.
func testParams() ScalingParams {
	return ScalingParams{
		Metric:                 revision.MetricConcurrency,
		Algorithm:              revision.AlgorithmLinear,
		TotalValue:             10,
		TargetValue:            10,
		TargetUtilization:      1,
		StableWindow:           60 * time.Second,
		PanicWindow:            6 * time.Second,
		PanicThreshold:         2,
		MaxScaleUpRate:         1000,
		MaxScaleDownRate:       2,
		InitialScale:           1,
		TargetBurstCapacity:    211,
		ActivatorCapacity:      100,
		EnableScaleToZero:      true,
		ScaleToZeroGracePeriod: 30 * time.Second,
	}
}

func newTestKPA(t *testing.T, p ScalingParams, ready int) *KPA {
	t.Helper()
	k, err := NewKPA(p, t0, ready)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKPAScaleMath(t *testing.T) {
	tests := []struct {
		name       string
		edit       func(*ScalingParams)
		o          Observed
		want       int
		wantPanic  bool
		wantExcess int
	}{
		{"idle at zero", nil, Observed{}, 0, false, -211},
		{"ceil of stable/target", nil, Observed{Stable: 25, Panic: 25, Serving: 3}, 3, false, -206},
		{"down limited to ready/2 when reachable", nil, Observed{Serving: 10}, 5, false, -111},
		{"down unlimited when unreachable", nil, Observed{Serving: 10, Unreachable: true}, 0, false, -111},
		{"two instances cannot reach zero in one step", nil, Observed{Serving: 2}, 1, false, -191},
		{"up limited to ceil(rate × ready)", func(p *ScalingParams) { p.MaxScaleUpRate = 1.1 },
			Observed{Stable: 30, Panic: 30, Serving: 2}, 3, false, -221},
		{"up limit still allows +1 at one instance", func(p *ScalingParams) { p.MaxScaleUpRate = 1.01 },
			Observed{Stable: 50, Panic: 5, Serving: 1}, 2, false, -206},
		{"down limit still allows -1", func(p *ScalingParams) { p.MaxScaleDownRate = 1.01 },
			Observed{Serving: 3}, 2, false, -181},
		{"zero ready count as one for the up limit", func(p *ScalingParams) { p.MaxScaleUpRate = 3 },
			Observed{Stable: 1000, Panic: 0, Serving: 0}, 3, false, -211},
		{"activation scale lifts any demand", func(p *ScalingParams) { p.ActivationScale = 3 },
			Observed{Stable: 0.1, Panic: 0.1, Serving: 0}, 3, false, -212},
		{"activation scale leaves zero demand at zero", func(p *ScalingParams) { p.ActivationScale = 3 },
			Observed{}, 0, false, -211},
		{"activation scale 1 is off", func(p *ScalingParams) { p.ActivationScale = 1 },
			Observed{Stable: 0.1, Panic: 0.1}, 1, false, -212},
		{"panic by the ceiling rule", nil, Observed{Stable: 0, Panic: 70.5, Serving: 4}, 8, true, -242},
		{"just under the panic threshold", nil, Observed{Stable: 0, Panic: 60, Serving: 4}, 2, false, -231},
		{"EBC with target burst capacity 0", func(p *ScalingParams) { p.TargetBurstCapacity = 0 },
			Observed{Stable: 5, Panic: 5, Serving: 1}, 1, false, 0},
		{"EBC with target burst capacity -1", func(p *ScalingParams) { p.TargetBurstCapacity = -1 },
			Observed{Stable: 5, Panic: 5, Serving: 1}, 1, false, -1},
		{"EBC floors", func(p *ScalingParams) { p.TotalValue = 100; p.TargetBurstCapacity = 200 },
			Observed{Stable: 20, Panic: 20.5, Serving: 3}, 2, false, 79},
		{"NaN observations count as zero", nil, Observed{Stable: nanf(), Panic: nanf(), Serving: 1}, 0, false, -201},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := testParams()
			if tc.edit != nil {
				tc.edit(&p)
			}
			k := newTestKPA(t, p, min(tc.o.Serving, 1))
			got := k.Decide(t0, tc.o)
			want := Recommendation{DesiredScale: tc.want, ExcessBurstCapacity: tc.wantExcess, Panicking: tc.wantPanic}
			if got != want {
				t.Errorf("Decide(%+v) = %+v, want %+v", tc.o, got, want)
			}
		})
	}
}

func nanf() float64 {
	var zero float64
	return zero / zero
}

func TestKPAPanicExtensionAndExit(t *testing.T) {
	k := newTestKPA(t, testParams(), 1)
	steps := []struct {
		at        time.Duration
		o         Observed
		want      int
		wantPanic bool
	}{
		{0, Observed{Stable: 10, Panic: 70.5, Serving: 4}, 8, true},
		// Load drops: no scale-down while panicking.
		{2 * time.Second, Observed{Stable: 20, Panic: 20, Serving: 8}, 8, true},
		// Over again at 30 s: the panic is extended and grows.
		{30 * time.Second, Observed{Stable: 20, Panic: 200, Serving: 8}, 20, true},
		{32 * time.Second, Observed{Stable: 20, Panic: 20, Serving: 20}, 20, true},
		// Exactly a stable window after the last over-threshold tick: still panicking.
		{90 * time.Second, Observed{Stable: 20, Panic: 20, Serving: 20}, 20, true},
		// Strictly after: out of panic, stable rules (rate-limited to 20/2).
		{90*time.Second + time.Nanosecond, Observed{Stable: 20, Panic: 20, Serving: 20}, 10, false},
	}
	for _, s := range steps {
		got := k.Decide(at(s.at), s.o)
		if got.DesiredScale != s.want || got.Panicking != s.wantPanic {
			t.Fatalf("at %v: Decide = %+v, want desired %d panic %v", s.at, got, s.want, s.wantPanic)
		}
	}
	if st := k.State(); st != (KPAState{}) {
		t.Fatalf("state after exit = %+v, want zero", st)
	}
}

func TestKPAStableAbovePanicWhilePanicking(t *testing.T) {
	k := newTestKPA(t, testParams(), 1)
	k.Decide(t0, Observed{Panic: 30, Serving: 1}) // 3/1 ≥ 2: panic, 3
	got := k.Decide(at(2*time.Second), Observed{Stable: 50, Panic: 10, Serving: 3})
	if got.DesiredScale != 5 || !got.Panicking {
		t.Fatalf("Decide = %+v, want the stable count 5 in panic", got)
	}
}

func TestKPARestartInPanic(t *testing.T) {
	k := newTestKPA(t, testParams(), 5)
	if st := k.State(); !st.Panicking || st.MaxPanicPods != 5 || !st.PanicTime.Equal(t0) {
		t.Fatalf("state of a KPA created with 5 ready = %+v, want panicking holding 5", st)
	}
	idle := Observed{Serving: 5}
	for d := time.Duration(0); d <= 60*time.Second; d += TickInterval {
		if got := k.Decide(at(d), idle); got.DesiredScale != 5 || !got.Panicking {
			t.Fatalf("at %v: Decide = %+v, want 5 in panic", d, got)
		}
	}
	if got := k.Decide(at(62*time.Second), idle); got.DesiredScale != 2 || got.Panicking {
		t.Fatalf("after a stable window: Decide = %+v, want 2 out of panic", got)
	}
	if st := newTestKPA(t, testParams(), 1).State(); st.Panicking || st.MaxPanicPods != 1 {
		t.Fatalf("state of a KPA created with 1 ready = %+v, want not panicking", st)
	}
}

func TestKPAScaleDownDelay(t *testing.T) {
	p := testParams()
	p.ScaleDownDelay = 10 * time.Second
	k := newTestKPA(t, p, 1)
	if got := k.Decide(t0, Observed{Stable: 100, Panic: 10, Serving: 1}); got.DesiredScale != 10 {
		t.Fatalf("scale-up = %d, want 10 at once", got.DesiredScale)
	}
	for d := 2 * time.Second; d < 10*time.Second; d += TickInterval {
		if got := k.Decide(at(d), Observed{Serving: 10}); got.DesiredScale != 10 {
			t.Fatalf("at %v: %d, want 10 held by the delay", d, got.DesiredScale)
		}
	}
	if got := k.Decide(at(10*time.Second), Observed{Serving: 10}); got.DesiredScale != 5 {
		t.Fatalf("at 10s: %d, want 5 once the 10 is a delay old", got.DesiredScale)
	}
	// Unreachable revisions skip the delay.
	if got := k.Decide(at(12*time.Second), Observed{Serving: 5, Unreachable: true}); got.DesiredScale != 0 {
		t.Fatalf("unreachable: %d, want 0", got.DesiredScale)
	}
}

func TestKPAUpdateKeepsState(t *testing.T) {
	k := newTestKPA(t, testParams(), 3)
	p := testParams()
	p.TargetValue = 5
	if err := k.Update(p); err != nil {
		t.Fatal(err)
	}
	if !k.State().Panicking || k.Params().TargetValue != 5 {
		t.Fatalf("after Update: state %+v params target %v", k.State(), k.Params().TargetValue)
	}
	p.MaxScaleDownRate = 1
	if err := k.Update(p); err == nil {
		t.Fatal("Update accepted MaxScaleDownRate 1")
	}
}

func TestNewKPARejectsBadParams(t *testing.T) {
	tests := []struct {
		field string
		edit  func(*ScalingParams)
	}{
		{"TargetValue", func(p *ScalingParams) { p.TargetValue = 0 }},
		{"TotalValue", func(p *ScalingParams) { p.TotalValue = -1 }},
		{"PanicThreshold", func(p *ScalingParams) { p.PanicThreshold = 0 }},
		{"MaxScaleUpRate", func(p *ScalingParams) { p.MaxScaleUpRate = 1 }},
		{"MaxScaleDownRate", func(p *ScalingParams) { p.MaxScaleDownRate = nanf() }},
		{"StableWindow", func(p *ScalingParams) { p.StableWindow = 0 }},
		{"ScaleDownDelay", func(p *ScalingParams) { p.ScaleDownDelay = -time.Second }},
		{"TargetBurstCapacity", func(p *ScalingParams) { p.TargetBurstCapacity = -2 }},
		{"ActivationScale", func(p *ScalingParams) { p.ActivationScale = -1 }},
	}
	for _, tc := range tests {
		p := testParams()
		tc.edit(&p)
		_, err := NewKPA(p, t0, 0)
		if err == nil || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("%s: err = %v, want one naming the field", tc.field, err)
		}
	}
}

func TestKPAWithResolvedDefaults(t *testing.T) {
	p, err := DefaultConfig().Resolve(revision.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	k := newTestKPA(t, p, 0)
	// Defaults: total 100, target 70, TBC 211; ceil(71/70)/1 = 2 panics.
	got := k.Decide(t0, Observed{Stable: 71, Panic: 71, Serving: 1})
	if want := (Recommendation{DesiredScale: 2, ExcessBurstCapacity: -182, Panicking: true}); got != want {
		t.Fatalf("Decide = %+v, want %+v", got, want)
	}
}

func BenchmarkKPADecide(b *testing.B) {
	k, err := NewKPA(testParams(), t0, 1)
	if err != nil {
		b.Fatal(err)
	}
	now := t0
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		now = now.Add(TickInterval)
		v := float64(i % 97)
		k.Decide(now, Observed{Stable: v, Panic: v * 1.5, Serving: 1 + i%9})
	}
}
