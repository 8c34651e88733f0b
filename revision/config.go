package revision

import (
	"cmp"
	"fmt"
	"math"
	"strconv"
	"time"
)

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
		ProgressDeadline:                  DefaultProgressDeadline,
	}
}

func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// Validate checks every field of c against Knative's ranges (see the
// field comments of Config). Errors are *FieldErrors named "Config.<Field>",
// joined.
func (c Config) Validate() error {
	var errs errList
	dur := func(field string, d, lo, hi time.Duration, whole bool) {
		if !inDurationRange(d, lo, hi, whole) {
			errs.add("Config."+field, d.String(), "in "+durationRange(lo, hi, whole))
		}
	}
	num := func(field string, f float64, ok bool, allowed string) {
		if !finite(f) || !ok {
			errs.add("Config."+field, fmtFloat(f), allowed)
		}
	}
	integer := func(field string, n int, ok bool, allowed string) {
		if !ok || n > maxInt32 {
			errs.add("Config."+field, strconv.Itoa(n), allowed)
		}
	}
	dur("StableWindow", c.StableWindow, WindowMin, WindowMax, true)
	num("PanicWindowPercentage", c.PanicWindowPercentage,
		c.PanicWindowPercentage >= 1 && c.PanicWindowPercentage <= 100, "in [1, 100]")
	num("PanicThresholdPercentage", c.PanicThresholdPercentage,
		c.PanicThresholdPercentage >= 110 && c.PanicThresholdPercentage <= 1000, "in [110, 1000]")
	num("TargetUtilizationPercentage", c.TargetUtilizationPercentage,
		c.TargetUtilizationPercentage > 0 && c.TargetUtilizationPercentage <= 100, "in (0, 100]")
	util := c.TargetUtilizationPercentage / 100
	num("ContainerConcurrencyTargetDefault", c.ContainerConcurrencyTargetDefault,
		c.ContainerConcurrencyTargetDefault*util >= TargetMin,
		"such that it × TargetUtilizationPercentage/100 ≥ 0.01")
	num("RPSTargetDefault", c.RPSTargetDefault,
		c.RPSTargetDefault*util >= TargetMin,
		"such that it × TargetUtilizationPercentage/100 ≥ 0.01")
	num("MaxScaleUpRate", c.MaxScaleUpRate, c.MaxScaleUpRate > 1, "> 1")
	num("MaxScaleDownRate", c.MaxScaleDownRate, c.MaxScaleDownRate > 1, "> 1")
	if c.ScaleToZeroGracePeriod <= 0 || c.ScaleToZeroGracePeriod > WindowMax {
		errs.add("Config.ScaleToZeroGracePeriod", c.ScaleToZeroGracePeriod.String(), "in (0s, 1h0m0s]")
	}
	if d := c.ProgressDeadline; d != 0 && !validProgressDeadline(d) {
		errs.add("Config.ProgressDeadline", d.String(), progressDeadlineRange+" (0 = 10m0s)")
	}
	dur("ScaleToZeroPodRetentionPeriod", c.ScaleToZeroPodRetentionPeriod, 0, WindowMax, false)
	dur("ScaleDownDelay", c.ScaleDownDelay, 0, WindowMax, true)
	num("TargetBurstCapacity", c.TargetBurstCapacity, validTBC(c.TargetBurstCapacity), "≥ 0, or exactly -1 (unlimited)")
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
// the autoscaler's job. Resolve validates c and spec's scaling settings
// and ContainerConcurrency; every error names the key or field.
func (c Config) Resolve(spec Spec) (ScalingParams, error) {
	if err := c.Validate(); err != nil {
		return ScalingParams{}, err
	}
	s := spec.Scaling
	if err := s.Validate(); err != nil {
		return ScalingParams{}, err
	}
	var errs errList
	if checkContainerConcurrency(&errs, spec.ContainerConcurrency); len(errs) > 0 {
		return ScalingParams{}, errs.err()
	}
	p := ScalingParams{
		Metric:                        cmp.Or(s.Metric, MetricConcurrency),
		Algorithm:                     cmp.Or(s.MetricAggregationAlgorithm, AlgorithmLinear),
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
		IdleMode:                      cmp.Or(s.IdleMode, IdleModeStop),
		StandbyRetention:              deref(s.StandbyRetention, DefaultStandbyRetention),
		ProgressDeadline:              cmp.Or(spec.ProgressDeadline, c.ProgressDeadline, DefaultProgressDeadline),
	}
	if s.FloorSchedule != nil {
		p.FloorSchedule = *s.FloorSchedule
	}

	cc := float64(spec.ContainerConcurrency)
	switch {
	case p.Metric == MetricRPS:
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
	p.TargetValue = max(TargetMin, p.TotalValue*p.TargetUtilization)

	pct := deref(s.PanicWindowPercentage, c.PanicWindowPercentage)
	p.PanicWindow = max(time.Second, time.Duration(float64(p.StableWindow)*pct/100).Round(time.Second))

	if c.MaxScaleLimit > 0 {
		switch {
		case s.MaxScale == nil && p.MaxScale == 0:
			p.MaxScale = c.MaxScaleLimit
		case p.MaxScale < 1 || p.MaxScale > c.MaxScaleLimit:
			errs.add(MaxScaleAnnotation, strconv.Itoa(p.MaxScale),
				fmt.Sprintf("in [1, %d] (the host's max-scale limit)", c.MaxScaleLimit))
		}
	}
	if p.MaxScale > 0 && p.MinScale > p.MaxScale {
		errs.add(MinScaleAnnotation, strconv.Itoa(p.MinScale), fmt.Sprintf("≤ the effective max-scale (%d)", p.MaxScale))
	}
	if f := p.FloorSchedule.Max(); p.MaxScale > 0 && f > p.MaxScale {
		errs.add(FloorScheduleAnnotation, p.FloorSchedule.String(),
			fmt.Sprintf("floors ≤ the effective max-scale (%d): the largest is %d", p.MaxScale, f))
	}
	if p.ActivationScale > 0 && (p.ActivationScale < p.MinScale || (p.MaxScale > 0 && p.ActivationScale > p.MaxScale)) {
		errs.add(ActivationScaleAnnotation, strconv.Itoa(p.ActivationScale),
			fmt.Sprintf("within the effective [min-scale, max-scale] = [%d, %d]", p.MinScale, p.MaxScale))
	}
	if p.InitialScale == 0 && !c.AllowZeroInitialScale {
		errs.add(InitialScaleAnnotation, "0", "≥ 1: the host does not allow zero initial scale (Config.AllowZeroInitialScale)")
	}
	if err := errs.err(); err != nil {
		return ScalingParams{}, err
	}
	return p, nil
}

func deref[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
