package autoscaler

import (
	"errors"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
)

func TestDefaultConfigIsKnatives(t *testing.T) {
	c := DefaultConfig()
	want := Config{
		StableWindow: 60 * time.Second, PanicWindowPercentage: 10, PanicThresholdPercentage: 200,
		TargetUtilizationPercentage: 70, ContainerConcurrencyTargetDefault: 100, RPSTargetDefault: 200,
		MaxScaleUpRate: 1000, MaxScaleDownRate: 2, EnableScaleToZero: true,
		ScaleToZeroGracePeriod: 30 * time.Second, TargetBurstCapacity: 211, ActivatorCapacity: 100,
		InitialScale: 1, ProgressDeadline: 600 * time.Second,
	}
	if c != want {
		t.Fatalf("DefaultConfig() = %+v\nwant %+v", c, want)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		field, value string
		mutate       func(*Config)
	}{
		{"Config.StableWindow", "5s", func(c *Config) { c.StableWindow = 5 * time.Second }},
		{"Config.StableWindow", "1h0m1s", func(c *Config) { c.StableWindow = time.Hour + time.Second }},
		{"Config.StableWindow", "6.5s", func(c *Config) { c.StableWindow = 6500 * time.Millisecond }},
		{"Config.PanicWindowPercentage", "0.5", func(c *Config) { c.PanicWindowPercentage = 0.5 }},
		{"Config.PanicWindowPercentage", "101", func(c *Config) { c.PanicWindowPercentage = 101 }},
		{"Config.PanicWindowPercentage", "NaN", func(c *Config) { c.PanicWindowPercentage = math.NaN() }},
		{"Config.PanicThresholdPercentage", "100", func(c *Config) { c.PanicThresholdPercentage = 100 }},
		{"Config.PanicThresholdPercentage", "1001", func(c *Config) { c.PanicThresholdPercentage = 1001 }},
		{"Config.TargetUtilizationPercentage", "0", func(c *Config) { c.TargetUtilizationPercentage = 0 }},
		{"Config.TargetUtilizationPercentage", "100.5", func(c *Config) { c.TargetUtilizationPercentage = 100.5 }},
		{"Config.ContainerConcurrencyTargetDefault", "0.01", func(c *Config) { c.ContainerConcurrencyTargetDefault = 0.01 }},
		{"Config.RPSTargetDefault", "0", func(c *Config) { c.RPSTargetDefault = 0 }},
		{"Config.RPSTargetDefault", "+Inf", func(c *Config) { c.RPSTargetDefault = math.Inf(1) }},
		{"Config.MaxScaleUpRate", "1", func(c *Config) { c.MaxScaleUpRate = 1 }},
		{"Config.MaxScaleDownRate", "1", func(c *Config) { c.MaxScaleDownRate = 1 }},
		{"Config.ScaleToZeroGracePeriod", "0s", func(c *Config) { c.ScaleToZeroGracePeriod = 0 }},
		{"Config.ScaleToZeroPodRetentionPeriod", "-1s", func(c *Config) { c.ScaleToZeroPodRetentionPeriod = -time.Second }},
		{"Config.ScaleToZeroPodRetentionPeriod", "2h0m0s", func(c *Config) { c.ScaleToZeroPodRetentionPeriod = 2 * time.Hour }},
		{"Config.ScaleDownDelay", "-1s", func(c *Config) { c.ScaleDownDelay = -time.Second }},
		{"Config.ScaleDownDelay", "1.5s", func(c *Config) { c.ScaleDownDelay = 1500 * time.Millisecond }},
		{"Config.TargetBurstCapacity", "-2", func(c *Config) { c.TargetBurstCapacity = -2 }},
		{"Config.ActivatorCapacity", "0.5", func(c *Config) { c.ActivatorCapacity = 0.5 }},
		{"Config.InitialScale", "0", func(c *Config) { c.InitialScale = 0 }},
		{"Config.InitialScale", "-1", func(c *Config) { c.InitialScale = -1; c.AllowZeroInitialScale = true }},
		{"Config.MinScale", "-1", func(c *Config) { c.MinScale = -1 }},
		{"Config.MinScale", "4", func(c *Config) { c.MinScale = 4; c.MaxScale = 3 }},
		{"Config.MaxScale", "-1", func(c *Config) { c.MaxScale = -1 }},
		{"Config.MaxScale", "11", func(c *Config) { c.MaxScale = 11; c.MaxScaleLimit = 10 }},
		{"Config.MaxScaleLimit", "-1", func(c *Config) { c.MaxScaleLimit = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			_, err := c.Resolve(revision.Spec{})
			require.Error(t, err, "Resolve accepted an invalid Config")
			requireFieldError(t, c.Validate(), tt.field, tt.value)
		})
	}

	ok := DefaultConfig()
	ok.InitialScale, ok.AllowZeroInitialScale = 0, true
	ok.MinScale, ok.MaxScale, ok.MaxScaleLimit = 2, 2, 2
	ok.TargetBurstCapacity = -1
	ok.StableWindow, ok.ScaleDownDelay, ok.ScaleToZeroPodRetentionPeriod = time.Hour, time.Hour, time.Hour
	if err := ok.Validate(); err != nil {
		t.Fatalf("edges: %v", err)
	}
}

func TestResolveTargets(t *testing.T) {
	tests := []struct {
		name                 string
		cc                   int
		scaling              revision.Scaling
		wantTotal, wantValue float64
	}{
		{"defaults", 0, revision.Scaling{}, 100, 70},
		{"container concurrency is the total", 10, revision.Scaling{}, 10, 7},
		{"target is a total, times utilization", 0, revision.Scaling{Target: new(10.0)}, 10, 7},
		{"target capped at container concurrency", 10, revision.Scaling{Target: new(50.0)}, 10, 7},
		{"target below container concurrency", 10, revision.Scaling{Target: new(4.0)}, 4, 2.8},
		{"utilization", 0, revision.Scaling{TargetUtilizationPercentage: new(50.0)}, 100, 50},
		{"rps default", 0, revision.Scaling{Metric: revision.MetricRPS}, 200, 140},
		{"rps ignores container concurrency", 5, revision.Scaling{Metric: revision.MetricRPS, Target: new(30.0)}, 30, 21},
		{"floor at 0.01", 0, revision.Scaling{Target: new(0.01), TargetUtilizationPercentage: new(1.0)}, 0.01, 0.01},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := DefaultConfig().Resolve(revision.Spec{ContainerConcurrency: tt.cc, Scaling: tt.scaling})
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalValue != tt.wantTotal || math.Abs(p.TargetValue-tt.wantValue) > 1e-9 {
				t.Fatalf("total %v target %v, want %v %v", p.TotalValue, p.TargetValue, tt.wantTotal, tt.wantValue)
			}
			if p.ContainerConcurrency != tt.cc {
				t.Fatalf("ContainerConcurrency %d, want %d", p.ContainerConcurrency, tt.cc)
			}
		})
	}
}

func TestResolvePanicWindow(t *testing.T) {
	tests := []struct {
		stable time.Duration
		pct    float64
		want   time.Duration
	}{
		{60 * time.Second, 10, 6 * time.Second},
		{25 * time.Second, 10, 3 * time.Second}, // 2.5 s rounds half away from zero
		{15 * time.Second, 10, 2 * time.Second}, // 1.5 s
		{14 * time.Second, 10, time.Second},     // 1.4 s
		{6 * time.Second, 1, time.Second},       // 60 ms, at least 1 s
		{time.Hour, 100, time.Hour},
		{70 * time.Second, 12.5, 9 * time.Second}, // 8.75 s
	}
	for _, tt := range tests {
		p, err := DefaultConfig().Resolve(revision.Spec{Scaling: revision.Scaling{Window: new(tt.stable), PanicWindowPercentage: new(tt.pct)}})
		if err != nil {
			t.Fatal(err)
		}
		if p.PanicWindow != tt.want || p.StableWindow != tt.stable {
			t.Errorf("stable %v × %v%%: panic %v, want %v", tt.stable, tt.pct, p.PanicWindow, tt.want)
		}
	}
	// The Config's percentage applies when the annotation is unset.
	c := DefaultConfig()
	c.StableWindow, c.PanicWindowPercentage = 30*time.Second, 20
	if p, _ := c.Resolve(revision.Spec{}); p.PanicWindow != 6*time.Second {
		t.Errorf("config 30s × 20%%: %v", p.PanicWindow)
	}
}

func TestResolveDefaults(t *testing.T) {
	p, err := DefaultConfig().Resolve(revision.Spec{})
	if err != nil {
		t.Fatal(err)
	}
	want := ScalingParams{
		Metric: revision.MetricConcurrency, Algorithm: revision.AlgorithmLinear, TotalValue: 100, TargetValue: 70,
		TargetUtilization: 0.7, StableWindow: time.Minute, PanicWindow: 6 * time.Second, PanicThreshold: 2,
		MaxScaleUpRate: 1000, MaxScaleDownRate: 2, InitialScale: 1, TargetBurstCapacity: 211,
		ActivatorCapacity: 100, EnableScaleToZero: true, ScaleToZeroGracePeriod: 30 * time.Second,
		ProgressDeadline: 600 * time.Second, IdleMode: revision.IdleModeStop, StandbyRetention: revision.DefaultStandbyRetention,
	}
	require.Equal(t, want, p)
}

func TestResolveOverrides(t *testing.T) {
	c := DefaultConfig()
	c.EnableScaleToZero = false
	c.ScaleToZeroGracePeriod = 45 * time.Second
	c.ProgressDeadline = 0 // still Knative's 600 s, overridden by the spec
	p, err := c.Resolve(revision.Spec{ContainerConcurrency: 50, Scaling: fullScaling(), ProgressDeadline: 42 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := ScalingParams{
		Metric: revision.MetricRPS, Algorithm: revision.AlgorithmWeightedExponential, ContainerConcurrency: 50,
		TotalValue: 12.5, TargetValue: 10, TargetUtilization: 0.8,
		StableWindow: 90 * time.Second, PanicWindow: 11 * time.Second, PanicThreshold: 3,
		MaxScaleUpRate: 1000, MaxScaleDownRate: 2, MinScale: 1, MaxScale: 20, InitialScale: 3,
		ActivationScale: 2, ScaleDownDelay: 15 * time.Minute, TargetBurstCapacity: -1,
		ActivatorCapacity: 100, EnableScaleToZero: false, ScaleToZeroGracePeriod: 45 * time.Second,
		ScaleToZeroPodRetentionPeriod: 1500 * time.Millisecond, ProgressDeadline: 42 * time.Second,
		FloorSchedule: *fullScaling().FloorSchedule, FloorLeadTime: 10 * time.Minute,
		IdleCheckPath: "/idle", IdleMode: revision.IdleModeFreeze, StandbyRetention: 90 * time.Second,
	}
	require.Equal(t, want, p)
}

func TestResolveScaleBounds(t *testing.T) {
	limited := DefaultConfig()
	limited.MaxScaleLimit = 10
	zeroOK := DefaultConfig()
	zeroOK.AllowZeroInitialScale = true
	bounded := DefaultConfig()
	bounded.MinScale, bounded.MaxScale = 3, 5

	t.Run("unset max takes the limit", func(t *testing.T) {
		p, err := limited.Resolve(revision.Spec{})
		if err != nil || p.MaxScale != 10 {
			t.Fatalf("max %d, err %v", p.MaxScale, err)
		}
	})
	t.Run("max within the limit", func(t *testing.T) {
		p, err := limited.Resolve(revision.Spec{Scaling: revision.Scaling{MaxScale: new(10)}})
		if err != nil || p.MaxScale != 10 {
			t.Fatalf("max %d, err %v", p.MaxScale, err)
		}
	})
	t.Run("host bounds apply", func(t *testing.T) {
		p, err := bounded.Resolve(revision.Spec{})
		if err != nil || p.MinScale != 3 || p.MaxScale != 5 {
			t.Fatalf("%d..%d, err %v", p.MinScale, p.MaxScale, err)
		}
	})
	t.Run("zero initial scale when allowed", func(t *testing.T) {
		p, err := zeroOK.Resolve(revision.Spec{Scaling: revision.Scaling{InitialScale: new(0)}})
		if err != nil || p.InitialScale != 0 {
			t.Fatalf("initial %d, err %v", p.InitialScale, err)
		}
	})

	errs := []struct {
		name         string
		c            Config
		s            revision.Spec
		field, value string
	}{
		{"max above the limit", limited, revision.Spec{Scaling: revision.Scaling{MaxScale: new(11)}}, revision.MaxScaleAnnotation, "11"},
		{"unlimited max with a limit", limited, revision.Spec{Scaling: revision.Scaling{MaxScale: new(0)}}, revision.MaxScaleAnnotation, "0"},
		{"min above the host max", bounded, revision.Spec{Scaling: revision.Scaling{MinScale: new(6)}}, revision.MinScaleAnnotation, "6"},
		{"activation below the host min", bounded, revision.Spec{Scaling: revision.Scaling{ActivationScale: new(2)}}, revision.ActivationScaleAnnotation, "2"},
		{"activation above the host max", bounded, revision.Spec{Scaling: revision.Scaling{ActivationScale: new(6)}}, revision.ActivationScaleAnnotation, "6"},
		{"zero initial scale not allowed", DefaultConfig(), revision.Spec{Scaling: revision.Scaling{InitialScale: new(0)}}, revision.InitialScaleAnnotation, "0"},
		{"invalid scaling", DefaultConfig(), revision.Spec{Scaling: revision.Scaling{Window: new(time.Second)}}, revision.WindowAnnotation, "1s"},
		{"container concurrency", DefaultConfig(), revision.Spec{ContainerConcurrency: 1001}, "Spec.ContainerConcurrency", "1001"},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.Resolve(tt.s)
			if err == nil {
				t.Fatal("accepted")
			}
			requireFieldError(t, err, tt.field, tt.value)
		})
	}
}

func TestConfigProgressDeadline(t *testing.T) {
	c := DefaultConfig()
	c.ProgressDeadline = 48 * time.Hour
	require.ErrorContains(t, c.Validate(), "Config.ProgressDeadline")
}

func TestResolveFloorScheduleAboveMaxScale(t *testing.T) {
	floor5, err := revision.ParseSchedule("* 00:00-24:00 UTC = 5")
	require.NoError(t, err)
	c := DefaultConfig()
	c.MaxScale = 4
	_, err = c.Resolve(revision.Spec{Image: "x", Scaling: revision.Scaling{FloorSchedule: new(floor5)}})
	var fe *revision.FieldError
	require.ErrorAs(t, err, &fe)
	assert.Equal(t, revision.FloorScheduleAnnotation, fe.Field)
	assert.Contains(t, fe.Allowed, "effective max-scale (4)")
}

// requireFieldError requires err to hold a *revision.FieldError for field
// and value.
func requireFieldError(t *testing.T, err error, field, value string) {
	t.Helper()
	all := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	}
	for _, e := range all {
		var fe *revision.FieldError
		if errors.As(e, &fe) && fe.Field == field && fe.Value == value {
			require.Contains(t, err.Error(), field)
			return
		}
	}
	t.Fatalf("error %q has no FieldError for %s=%q", err, field, value)
}

// fullScaling sets every annotation, as a manifest would.
func fullScaling() revision.Scaling {
	s, err := revision.ParseAnnotations(map[string]string{
		revision.MinScaleAnnotation:                      "1",
		revision.MaxScaleAnnotation:                      "20",
		revision.InitialScaleAnnotation:                  "3",
		revision.ActivationScaleAnnotation:               "2",
		revision.TargetAnnotation:                        "12.5",
		revision.TargetUtilizationPercentageAnnotation:   "80",
		revision.MetricAnnotation:                        "rps",
		revision.WindowAnnotation:                        "90s",
		revision.PanicWindowPercentageAnnotation:         "12.5",
		revision.PanicThresholdPercentageAnnotation:      "300",
		revision.ScaleDownDelayAnnotation:                "15m",
		revision.TargetBurstCapacityAnnotation:           "-1",
		revision.ScaleToZeroPodRetentionPeriodAnnotation: "1.5s",
		revision.MetricAggregationAlgorithmAnnotation:    "weighted-exponential",
		revision.FloorScheduleAnnotation:                 "Mon-Fri 08:00-18:00 Europe/Berlin = 2",
		revision.FloorLeadTimeAnnotation:                 "10m",
		revision.IdleCheckPathAnnotation:                 "/idle",
		revision.IdleModeAnnotation:                      "freeze",
		revision.StandbyRetentionAnnotation:              "90s",
	})
	if err != nil {
		panic(err)
	}
	return s
}

func BenchmarkConfigResolve(b *testing.B) {
	c := DefaultConfig()
	s := revision.Spec{ContainerConcurrency: 50, Scaling: fullScaling()}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Resolve(s); err != nil {
			b.Fatal(err)
		}
	}
}
