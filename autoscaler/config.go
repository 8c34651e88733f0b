package autoscaler

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler/aggregation"
	"github.com/zeroscale/zeroscale/internal/bounds"
	"github.com/zeroscale/zeroscale/revision"
)

// Config is the host-wide autoscaling configuration: Knative's
// config-autoscaler ConfigMap (each field's comment gives the Knative
// key, the default and the range Validate enforces). DefaultConfig
// returns Knative's defaults; hosts copy and override it. Percentages are
// always percentages: unlike Knative's ConfigMap, a
// TargetUtilizationPercentage ≤ 1 is not read as a fraction. A
// revision's own settings (revision.Scaling) override it per revision;
// Resolve combines the two into ScalingParams.
type Config struct {
	StableWindow                      time.Duration // stable-window: 60s; [6s, 1h], whole seconds
	PanicWindowPercentage             float64       // panic-window-percentage: 10; [1, 100]
	PanicThresholdPercentage          float64       // panic-threshold-percentage: 200; [110, 1000]
	TargetUtilizationPercentage       float64       // container-concurrency-target-percentage: 70; (0, 100]
	ContainerConcurrencyTargetDefault float64       // container-concurrency-target-default: 100; × utilization ≥ 0.01
	RPSTargetDefault                  float64       // requests-per-second-target-default: 200; × utilization ≥ 0.01
	MaxScaleUpRate                    float64       // max-scale-up-rate: 1000; > 1
	MaxScaleDownRate                  float64       // max-scale-down-rate: 2; > 1
	EnableScaleToZero                 bool          // enable-scale-to-zero: true
	ScaleToZeroGracePeriod            time.Duration // scale-to-zero-grace-period: 30s; (0, 1h]
	ScaleToZeroPodRetentionPeriod     time.Duration // scale-to-zero-pod-retention-period: 0; [0, 1h]
	ScaleDownDelay                    time.Duration // scale-down-delay: 0; [0, 1h], whole seconds
	TargetBurstCapacity               float64       // target-burst-capacity: 211; ≥ 0, or -1 = unlimited
	ActivatorCapacity                 float64       // activator-capacity: 100; ≥ 1
	InitialScale                      int           // initial-scale: 1; ≥ 1 (≥ 0 with AllowZeroInitialScale)
	AllowZeroInitialScale             bool          // allow-zero-initial-scale: false
	MinScale                          int           // min-scale: 0; ≥ 0, ≤ MaxScale when MaxScale > 0
	MaxScale                          int           // max-scale: 0 = unlimited; ≤ MaxScaleLimit when that is > 0
	MaxScaleLimit                     int           // max-scale-limit: 0 = none; ≥ 0
	// ProgressDeadline is config-deployment's progress-deadline: 600s
	// (0 also means 600s); whole seconds in [1s, 24h]. A revision's
	// Spec.ProgressDeadline overrides it.
	ProgressDeadline time.Duration
}

// ScalingParams are a revision's effective autoscaling parameters: its
// revision.Scaling settings resolved against a Config and its
// ContainerConcurrency (Config.Resolve). The Multiscaler and its Deciders
// consume these; nothing in them is optional. A hand-built value is
// checked by Multiscaler.Set and NewKPA (the ranges the KPA can work
// with, wider than Config's).
type ScalingParams struct {
	Metric                        revision.Metric
	Algorithm                     revision.Algorithm
	ContainerConcurrency          int
	TotalValue                    float64 // per-instance total (CC, default or target setting)
	TargetValue                   float64 // max(0.01, TotalValue × utilization)
	TargetUtilization             float64 // fraction, 0.7 by default
	StableWindow                  time.Duration
	PanicWindow                   time.Duration // round(stable × pct / 100), ≥ 1 s
	PanicThreshold                float64       // fraction, 2.0 by default
	MaxScaleUpRate                float64
	MaxScaleDownRate              float64
	MinScale                      int
	MaxScale                      int // 0 = unlimited; never 0 when Config.MaxScaleLimit > 0
	InitialScale                  int
	ActivationScale               int // 0 = off (unset)
	ScaleDownDelay                time.Duration
	TargetBurstCapacity           float64
	ActivatorCapacity             float64
	EnableScaleToZero             bool
	ScaleToZeroGracePeriod        time.Duration
	ScaleToZeroPodRetentionPeriod time.Duration
	// FloorSchedule raises MinScale while one of its windows is open
	// (FloorLeadTime before its start to its end); the zero Schedule
	// never does. The autoscaler evaluates it on its clock.
	FloorSchedule revision.Schedule
	FloorLeadTime time.Duration
	// IdleCheckPath, when set, is asked on every serving instance before
	// the revision goes to zero (control's idle check); "" = not asked.
	IdleCheckPath string
	// IdleMode is what the revision keeps instead of zero instances;
	// never "" (revision.IdleModeStop when unset).
	IdleMode revision.IdleMode
	// StandbyRetention is how long a frozen revision
	// (revision.IdleModeFreeze) stays frozen without a request before it
	// is scaled to zero; revision.DefaultStandbyRetention when unset.
	StandbyRetention time.Duration
	// ProgressDeadline bounds activating from zero (Spec's, else the
	// Config's); 0 in a hand-built value means
	// revision.DefaultProgressDeadline.
	ProgressDeadline time.Duration
}

// DefaultConfig returns Knative's config-autoscaler defaults: stable
// window 60 s, panic window 10 %, panic threshold 200 %, target
// utilization 70 %, container-concurrency target 100, RPS target 200,
// max scale-up rate 1000, max scale-down rate 2, scale to zero enabled
// after a 30 s grace period, no pod retention, no scale-down delay,
// target burst capacity 211, activator capacity 100, initial scale 1
// (zero not allowed), min scale 0, max scale 0 (unlimited) and no
// max-scale limit.
func DefaultConfig() Config {
	return Config{
		StableWindow:                      60 * time.Second,
		PanicWindowPercentage:             10,
		PanicThresholdPercentage:          200,
		TargetUtilizationPercentage:       70,
		ContainerConcurrencyTargetDefault: 100,
		RPSTargetDefault:                  200,
		MaxScaleUpRate:                    1000,
		MaxScaleDownRate:                  2,
		EnableScaleToZero:                 true,
		ScaleToZeroGracePeriod:            30 * time.Second,
		ScaleToZeroPodRetentionPeriod:     0,
		ScaleDownDelay:                    0,
		TargetBurstCapacity:               211,
		ActivatorCapacity:                 100,
		InitialScale:                      1,
		AllowZeroInitialScale:             false,
		MinScale:                          0,
		MaxScale:                          0,
		MaxScaleLimit:                     0,
		ProgressDeadline:                  revision.DefaultProgressDeadline,
	}
}

// fieldErrs accumulates *revision.FieldErrors in a stable order, joined
// by err.
type fieldErrs []error

func (l *fieldErrs) add(field, value, allowed string) {
	*l = append(*l, &revision.FieldError{Field: field, Value: value, Allowed: allowed})
}

func (l fieldErrs) err() error { return errors.Join(l...) }

// Validate checks every field of c against Knative's ranges (see the
// field comments of Config). Errors are *revision.FieldErrors named
// "Config.<Field>", joined. It is the one check of a Config: hosts call
// it when they take one, and Resolve calls it so that no Config is
// resolved unchecked.
func (c Config) Validate() error {
	var errs fieldErrs
	dur := func(field string, d, lo, hi time.Duration, whole bool) {
		if !bounds.InDuration(d, lo, hi, whole) {
			errs.add("Config."+field, d.String(), "in "+bounds.DurationRange(lo, hi, whole))
		}
	}
	num := func(field string, f float64, ok bool, allowed string) {
		if !bounds.Finite(f) || !ok {
			errs.add("Config."+field, bounds.FormatFloat(f), allowed)
		}
	}
	integer := func(field string, n int, ok bool, allowed string) {
		if !ok || n > bounds.MaxInt32 {
			errs.add("Config."+field, strconv.Itoa(n), allowed)
		}
	}
	dur("StableWindow", c.StableWindow, revision.WindowMin, revision.WindowMax, true)
	num("PanicWindowPercentage", c.PanicWindowPercentage,
		c.PanicWindowPercentage >= 1 && c.PanicWindowPercentage <= 100, "in [1, 100]")
	num("PanicThresholdPercentage", c.PanicThresholdPercentage,
		c.PanicThresholdPercentage >= 110 && c.PanicThresholdPercentage <= 1000, "in [110, 1000]")
	num("TargetUtilizationPercentage", c.TargetUtilizationPercentage,
		c.TargetUtilizationPercentage > 0 && c.TargetUtilizationPercentage <= 100, "in (0, 100]")
	util := c.TargetUtilizationPercentage / 100
	num("ContainerConcurrencyTargetDefault", c.ContainerConcurrencyTargetDefault,
		c.ContainerConcurrencyTargetDefault*util >= revision.TargetMin,
		"such that it × TargetUtilizationPercentage/100 ≥ 0.01")
	num("RPSTargetDefault", c.RPSTargetDefault,
		c.RPSTargetDefault*util >= revision.TargetMin,
		"such that it × TargetUtilizationPercentage/100 ≥ 0.01")
	num("MaxScaleUpRate", c.MaxScaleUpRate, c.MaxScaleUpRate > 1, "> 1")
	num("MaxScaleDownRate", c.MaxScaleDownRate, c.MaxScaleDownRate > 1, "> 1")
	if c.ScaleToZeroGracePeriod <= 0 || c.ScaleToZeroGracePeriod > revision.WindowMax {
		errs.add("Config.ScaleToZeroGracePeriod", c.ScaleToZeroGracePeriod.String(), "in (0s, 1h0m0s]")
	}
	if d := c.ProgressDeadline; d != 0 && !bounds.ProgressDeadline(d) {
		errs.add("Config.ProgressDeadline", d.String(), bounds.ProgressDeadlineRange+" (0 = 10m0s)")
	}
	dur("ScaleToZeroPodRetentionPeriod", c.ScaleToZeroPodRetentionPeriod, 0, revision.WindowMax, false)
	dur("ScaleDownDelay", c.ScaleDownDelay, 0, revision.WindowMax, true)
	num("TargetBurstCapacity", c.TargetBurstCapacity, bounds.TargetBurstCapacity(c.TargetBurstCapacity),
		"≥ 0, or exactly -1 (unlimited)")
	num("ActivatorCapacity", c.ActivatorCapacity, c.ActivatorCapacity >= 1, "≥ 1")
	if c.AllowZeroInitialScale {
		integer("InitialScale", c.InitialScale, c.InitialScale >= 0, "≥ 0")
	} else {
		integer("InitialScale", c.InitialScale, c.InitialScale >= 1, "≥ 1 (0 needs AllowZeroInitialScale)")
	}
	integer("MinScale", c.MinScale, c.MinScale >= 0 && (c.MaxScale <= 0 || c.MinScale <= c.MaxScale),
		"≥ 0 and ≤ MaxScale when MaxScale > 0")
	integer("MaxScale", c.MaxScale, c.MaxScale >= 0 && (c.MaxScaleLimit <= 0 || c.MaxScale <= c.MaxScaleLimit),
		"≥ 0 (0 = unlimited) and ≤ MaxScaleLimit when MaxScaleLimit > 0")
	integer("MaxScaleLimit", c.MaxScaleLimit, c.MaxScaleLimit >= 0, "≥ 0 (0 = no limit)")
	return errs.err()
}

// Resolve returns the effective scaling parameters of spec under c: each
// Scaling setting of spec, or c's default where it is unset, combined as
// Knative's reconciler does (pkg/reconciler/autoscaling/resources):
//
//   - total: for the concurrency metric, the target setting capped at
//     ContainerConcurrency when that is > 0; unset, ContainerConcurrency
//     if > 0, else ContainerConcurrencyTargetDefault. For rps, the target
//     setting or RPSTargetDefault.
//   - target = max(0.01, total × utilization): the target setting is a
//     total, still multiplied by the utilization (setting 10 → 7).
//   - panic window = stable window × percentage / 100, rounded to whole
//     seconds (halves away from zero), at least 1 s.
//   - max scale: the setting, else c.MaxScale; with MaxScaleLimit > 0 it
//     must be in [1, MaxScaleLimit] (an unset max-scale with c.MaxScale 0
//     takes the limit).
//   - initial scale: the setting, else c.InitialScale; 0 is an error
//     unless c.AllowZeroInitialScale.
//
// Min scale is carried as is: ignoring it for unreachable revisions is
// the Multiscaler's job. Resolve validates c (Validate), spec's scaling
// settings (revision.Scaling.Validate) and ContainerConcurrency, then
// what depends on both; every error is a *revision.FieldError naming the
// key or field.
func (c Config) Resolve(spec revision.Spec) (ScalingParams, error) {
	if err := c.Validate(); err != nil {
		return ScalingParams{}, err
	}
	s := spec.Scaling
	if err := s.Validate(); err != nil {
		return ScalingParams{}, err
	}
	var errs fieldErrs
	if !bounds.ContainerConcurrency(spec.ContainerConcurrency) {
		errs.add("Spec.ContainerConcurrency", strconv.Itoa(spec.ContainerConcurrency), bounds.ContainerConcurrencyRange)
		return ScalingParams{}, errs.err()
	}
	p := ScalingParams{
		Metric:                        cmp.Or(s.Metric, revision.MetricConcurrency),
		Algorithm:                     cmp.Or(s.MetricAggregationAlgorithm, revision.AlgorithmLinear),
		ContainerConcurrency:          spec.ContainerConcurrency,
		TargetUtilization:             deref(s.TargetUtilizationPercentage, c.TargetUtilizationPercentage) / 100,
		StableWindow:                  deref(s.Window, c.StableWindow),
		PanicThreshold:                deref(s.PanicThresholdPercentage, c.PanicThresholdPercentage) / 100,
		MaxScaleUpRate:                c.MaxScaleUpRate,
		MaxScaleDownRate:              c.MaxScaleDownRate,
		MinScale:                      deref(s.MinScale, c.MinScale),
		MaxScale:                      deref(s.MaxScale, c.MaxScale),
		InitialScale:                  deref(s.InitialScale, c.InitialScale),
		ActivationScale:               deref(s.ActivationScale, 0),
		ScaleDownDelay:                deref(s.ScaleDownDelay, c.ScaleDownDelay),
		TargetBurstCapacity:           deref(s.TargetBurstCapacity, c.TargetBurstCapacity),
		ActivatorCapacity:             c.ActivatorCapacity,
		EnableScaleToZero:             c.EnableScaleToZero,
		ScaleToZeroGracePeriod:        c.ScaleToZeroGracePeriod,
		ScaleToZeroPodRetentionPeriod: deref(s.ScaleToZeroPodRetentionPeriod, c.ScaleToZeroPodRetentionPeriod),
		FloorLeadTime:                 deref(s.FloorLeadTime, 0),
		IdleCheckPath:                 s.IdleCheckPath,
		IdleMode:                      cmp.Or(s.IdleMode, revision.IdleModeStop),
		StandbyRetention:              deref(s.StandbyRetention, revision.DefaultStandbyRetention),
		ProgressDeadline:              cmp.Or(spec.ProgressDeadline, c.ProgressDeadline, revision.DefaultProgressDeadline),
	}
	if s.FloorSchedule != nil {
		p.FloorSchedule = *s.FloorSchedule
	}

	cc := float64(spec.ContainerConcurrency)
	switch {
	case p.Metric == revision.MetricRPS:
		p.TotalValue = deref(s.Target, c.RPSTargetDefault)
	case s.Target != nil:
		p.TotalValue = *s.Target
		if cc > 0 {
			p.TotalValue = min(p.TotalValue, cc)
		}
	case cc > 0:
		p.TotalValue = cc
	default:
		p.TotalValue = c.ContainerConcurrencyTargetDefault
	}
	p.TargetValue = max(revision.TargetMin, p.TotalValue*p.TargetUtilization)

	pct := deref(s.PanicWindowPercentage, c.PanicWindowPercentage)
	p.PanicWindow = max(time.Second, time.Duration(float64(p.StableWindow)*pct/100).Round(time.Second))

	if c.MaxScaleLimit > 0 {
		switch {
		case s.MaxScale == nil && p.MaxScale == 0:
			p.MaxScale = c.MaxScaleLimit
		case p.MaxScale < 1 || p.MaxScale > c.MaxScaleLimit:
			errs.add(revision.MaxScaleAnnotation, strconv.Itoa(p.MaxScale),
				fmt.Sprintf("in [1, %d] (the host's max-scale limit)", c.MaxScaleLimit))
		}
	}
	if p.MaxScale > 0 && p.MinScale > p.MaxScale {
		errs.add(revision.MinScaleAnnotation, strconv.Itoa(p.MinScale), fmt.Sprintf("≤ the effective max-scale (%d)", p.MaxScale))
	}
	if f := p.FloorSchedule.Max(); p.MaxScale > 0 && f > p.MaxScale {
		errs.add(revision.FloorScheduleAnnotation, p.FloorSchedule.String(),
			fmt.Sprintf("floors ≤ the effective max-scale (%d): the largest is %d", p.MaxScale, f))
	}
	if p.ActivationScale > 0 && (p.ActivationScale < p.MinScale || (p.MaxScale > 0 && p.ActivationScale > p.MaxScale)) {
		errs.add(revision.ActivationScaleAnnotation, strconv.Itoa(p.ActivationScale),
			fmt.Sprintf("within the effective [min-scale, max-scale] = [%d, %d]", p.MinScale, p.MaxScale))
	}
	if p.InitialScale == 0 && !c.AllowZeroInitialScale {
		errs.add(revision.InitialScaleAnnotation, "0", "≥ 1: the host does not allow zero initial scale (Config.AllowZeroInitialScale)")
	}
	if err := errs.err(); err != nil {
		return ScalingParams{}, err
	}
	return p, nil
}

// validate is the one check of a ScalingParams, however it was built:
// the ranges the Multiscaler and the KPA can work with (wider than
// Config's and revision.Scaling's, which Resolve enforces). Each error
// names the field.
func (p ScalingParams) validate() error {
	var errs []error
	bad := func(field string, v any, allowed string) {
		errs = append(errs, fmt.Errorf("autoscaler: ScalingParams.%s = %v, want %s", field, v, allowed))
	}
	okf := bounds.Finite
	switch p.Metric {
	case "", revision.MetricConcurrency, revision.MetricRPS:
	default:
		bad("Metric", strconv.Quote(string(p.Metric)), fmt.Sprintf("%q or %q (\"\" = %[1]q)", revision.MetricConcurrency, revision.MetricRPS))
	}
	switch p.Algorithm {
	case "", revision.AlgorithmLinear, revision.AlgorithmWeightedExponential:
	default:
		bad("Algorithm", strconv.Quote(string(p.Algorithm)),
			fmt.Sprintf("%q or %q (\"\" = %[1]q)", revision.AlgorithmLinear, revision.AlgorithmWeightedExponential))
	}
	if !okf(p.TargetValue) || p.TargetValue < revision.TargetMin {
		bad("TargetValue", p.TargetValue, fmt.Sprintf("≥ %v", revision.TargetMin))
	}
	if !okf(p.TotalValue) || p.TotalValue < 0 {
		bad("TotalValue", p.TotalValue, "≥ 0")
	}
	if !okf(p.PanicThreshold) || p.PanicThreshold <= 0 {
		bad("PanicThreshold", p.PanicThreshold, "> 0 (a fraction: 2.0 = 200 %)")
	}
	if !okf(p.MaxScaleUpRate) || p.MaxScaleUpRate <= 1 {
		bad("MaxScaleUpRate", p.MaxScaleUpRate, "> 1")
	}
	if !okf(p.MaxScaleDownRate) || p.MaxScaleDownRate <= 1 {
		bad("MaxScaleDownRate", p.MaxScaleDownRate, "> 1")
	}
	if p.StableWindow < time.Second || p.StableWindow > aggregation.MaxWindow {
		bad("StableWindow", p.StableWindow, fmt.Sprintf("in [1s, %v]", aggregation.MaxWindow))
	}
	if p.PanicWindow < time.Second || p.PanicWindow > p.StableWindow {
		bad("PanicWindow", p.PanicWindow, "in [1s, StableWindow]")
	}
	if p.ScaleDownDelay < 0 || p.ScaleDownDelay > aggregation.MaxWindow {
		bad("ScaleDownDelay", p.ScaleDownDelay, fmt.Sprintf("in [0, %v]", aggregation.MaxWindow))
	}
	if !okf(p.TargetBurstCapacity) || !bounds.TargetBurstCapacity(p.TargetBurstCapacity) {
		bad("TargetBurstCapacity", p.TargetBurstCapacity, "≥ 0 or exactly -1")
	}
	if p.ActivationScale < 0 {
		bad("ActivationScale", p.ActivationScale, "≥ 0 (0 or 1 = off)")
	}
	if p.MinScale < 0 || (p.MaxScale > 0 && p.MinScale > p.MaxScale) {
		bad("MinScale", p.MinScale, "≥ 0 and ≤ MaxScale when MaxScale > 0")
	}
	if p.MaxScale < 0 {
		bad("MaxScale", p.MaxScale, "≥ 0 (0 = unlimited)")
	}
	if p.InitialScale < 0 {
		bad("InitialScale", p.InitialScale, "≥ 0")
	}
	if p.ScaleToZeroGracePeriod < 0 {
		bad("ScaleToZeroGracePeriod", p.ScaleToZeroGracePeriod, "≥ 0")
	}
	if p.ScaleToZeroPodRetentionPeriod < 0 {
		bad("ScaleToZeroPodRetentionPeriod", p.ScaleToZeroPodRetentionPeriod, "≥ 0")
	}
	return errors.Join(errs...)
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
