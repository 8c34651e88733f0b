package revision

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/internal/bounds"
)

// Annotation values and limits that are not plain numbers.
const (
	// ClassAnnotation selects the autoscaler class. Only the KPA is
	// implemented, so the only accepted value is KPAClass; it is accepted
	// (and otherwise ignored) so Knative manifests parse unchanged.
	ClassAnnotation = AnnotationPrefix + "class"
	// KPAClass is Knative's name for its Pod Autoscaler class.
	KPAClass = "kpa.autoscaling.knative.dev"

	// WindowMin and WindowMax bound the stable window and, for
	// WindowMax, every other duration setting.
	WindowMin = 6 * time.Second
	WindowMax = time.Hour
	// TargetMin is the smallest per-instance target.
	TargetMin = 0.01

	algorithmWeightedExponentialAlt = "weightedExponential"
)

// scalingField describes one annotation: its keys, how it is parsed into
// and rendered from a Scaling, and its range. One table drives
// ParseAnnotations, Scaling.Annotations, Scaling.Validate and
// Scaling.clone so they can never disagree.
type scalingField struct {
	key     string
	legacy  string // older camelCase spelling, "" if none
	allowed string
	// set parses v into s; false means v is malformed.
	set func(s *Scaling, v string) bool
	// get renders the field; false means it is unset.
	get func(s *Scaling) (string, bool)
	// valid reports whether the (set) field is in range.
	valid func(s *Scaling) bool
	// unshare replaces a pointer field by a copy; nil for value fields.
	unshare func(s *Scaling)
	// detail, when set, says what is wrong with a malformed v (appended
	// to allowed in the error), for values with a grammar.
	detail func(v string) string
}

// ptrField is a field held in Scaling as the *T that p addresses: parse
// and format convert its text, ok is its range.
func ptrField[T any](key, legacy, allowed string, parse func(string) (T, error), format func(T) string,
	ok func(T) bool, p func(*Scaling) **T) scalingField {
	return scalingField{
		key: key, legacy: legacy, allowed: allowed,
		set: func(s *Scaling, v string) bool {
			x, err := parse(v)
			if err != nil {
				return false
			}
			*p(s) = &x
			return true
		},
		get: func(s *Scaling) (string, bool) {
			if q := *p(s); q != nil {
				return format(*q), true
			}
			return "", false
		},
		valid:   func(s *Scaling) bool { return ok(**p(s)) },
		unshare: func(s *Scaling) { *p(s) = clonePtr(*p(s)) },
	}
}

func intField(key, legacy string, lo int, allowed string, p func(*Scaling) **int) scalingField {
	parse := func(v string) (int, error) {
		i, err := strconv.ParseInt(v, 10, 32)
		return int(i), err
	}
	return ptrField(key, legacy, allowed, parse, strconv.Itoa, func(n int) bool { return n >= lo && n <= bounds.MaxInt32 }, p)
}

func floatField(key, legacy, allowed string, ok func(float64) bool, p func(*Scaling) **float64) scalingField {
	parse := func(v string) (float64, error) { return strconv.ParseFloat(v, 64) }
	// NaN and ±Inf fail every range (Knative accepts NaN for some keys
	// because NaN < min is false; we do not).
	return ptrField(key, legacy, allowed, parse, bounds.FormatFloat, func(f float64) bool { return bounds.Finite(f) && ok(f) }, p)
}

func durationField(key, legacy string, lo, hi time.Duration, whole bool, p func(*Scaling) **time.Duration) scalingField {
	return ptrField(key, legacy, "a Go duration in "+bounds.DurationRange(lo, hi, whole), time.ParseDuration, time.Duration.String,
		func(d time.Duration) bool { return bounds.InDuration(d, lo, hi, whole) }, p)
}

func between(lo, hi float64) func(float64) bool {
	return func(f float64) bool { return f >= lo && f <= hi }
}

// scalingFields is every annotation Scaling carries, in rendering order.
var scalingFields = append([]scalingField{
	intField(MinScaleAnnotation, AnnotationPrefix+"minScale", 0,
		"an integer in [0, 2147483647]", func(s *Scaling) **int { return &s.MinScale }),
	intField(MaxScaleAnnotation, AnnotationPrefix+"maxScale", 0,
		"an integer in [0, 2147483647] (0 = unlimited)", func(s *Scaling) **int { return &s.MaxScale }),
	intField(InitialScaleAnnotation, AnnotationPrefix+"initialScale", 0,
		"an integer in [0, 2147483647] (0 only if the host allows zero initial scale)", func(s *Scaling) **int { return &s.InitialScale }),
	intField(ActivationScaleAnnotation, "", 2,
		"an integer in [2, 2147483647], within [min-scale, max-scale]", func(s *Scaling) **int { return &s.ActivationScale }),
	floatField(TargetAnnotation, "", "a number ≥ 0.01",
		func(f float64) bool { return f >= TargetMin }, func(s *Scaling) **float64 { return &s.Target }),
	floatField(TargetUtilizationPercentageAnnotation, AnnotationPrefix+"targetUtilizationPercentage", "a number in [1, 100]",
		between(1, 100), func(s *Scaling) **float64 { return &s.TargetUtilizationPercentage }),
	{
		key: MetricAnnotation, allowed: `"concurrency" or "rps"`,
		set: func(s *Scaling, v string) bool { s.Metric = Metric(v); return true },
		get: func(s *Scaling) (string, bool) { return string(s.Metric), s.Metric != "" },
		valid: func(s *Scaling) bool {
			return s.Metric == MetricConcurrency || s.Metric == MetricRPS
		},
	},
	durationField(WindowAnnotation, "", WindowMin, WindowMax, true, func(s *Scaling) **time.Duration { return &s.Window }),
	floatField(PanicWindowPercentageAnnotation, AnnotationPrefix+"panicWindowPercentage", "a number in [1, 100]",
		between(1, 100), func(s *Scaling) **float64 { return &s.PanicWindowPercentage }),
	floatField(PanicThresholdPercentageAnnotation, AnnotationPrefix+"panicThresholdPercentage", "a number in [110, 1000]",
		between(110, 1000), func(s *Scaling) **float64 { return &s.PanicThresholdPercentage }),
	durationField(ScaleDownDelayAnnotation, AnnotationPrefix+"scaleDownDelay", 0, WindowMax, true,
		func(s *Scaling) **time.Duration { return &s.ScaleDownDelay }),
	floatField(TargetBurstCapacityAnnotation, AnnotationPrefix+"targetBurstCapacity", "a number ≥ 0, or exactly -1 (unlimited)",
		bounds.TargetBurstCapacity, func(s *Scaling) **float64 { return &s.TargetBurstCapacity }),
	durationField(ScaleToZeroPodRetentionPeriodAnnotation, AnnotationPrefix+"scaleToZeroPodRetentionPeriod", 0, WindowMax, false,
		func(s *Scaling) **time.Duration { return &s.ScaleToZeroPodRetentionPeriod }),
	{
		key: MetricAggregationAlgorithmAnnotation, legacy: AnnotationPrefix + "metricAggregationAlgorithm",
		allowed: `"linear" or "weighted-exponential" (alias "weightedExponential")`,
		set: func(s *Scaling, v string) bool {
			if v == algorithmWeightedExponentialAlt {
				v = string(AlgorithmWeightedExponential)
			}
			s.MetricAggregationAlgorithm = Algorithm(v)
			return true
		},
		get: func(s *Scaling) (string, bool) {
			return string(s.MetricAggregationAlgorithm), s.MetricAggregationAlgorithm != ""
		},
		valid: func(s *Scaling) bool {
			a := s.MetricAggregationAlgorithm
			return a == AlgorithmLinear || a == AlgorithmWeightedExponential
		},
	},
	scheduleField(),
	durationField(FloorLeadTimeAnnotation, "", 0, MaxFloorLeadTime, false,
		func(s *Scaling) **time.Duration { return &s.FloorLeadTime }),
	{
		key: IdleCheckPathAnnotation, allowed: `a path starting with "/", printable ASCII without spaces, at most 1024 bytes`,
		set:   func(s *Scaling, v string) bool { s.IdleCheckPath = v; return true },
		get:   func(s *Scaling) (string, bool) { return s.IdleCheckPath, s.IdleCheckPath != "" },
		valid: func(s *Scaling) bool { return validIdlePath(s.IdleCheckPath) },
	},
	{
		key: IdleModeAnnotation, allowed: `"stop", "freeze" or "reserve"`,
		set: func(s *Scaling, v string) bool { s.IdleMode = IdleMode(v); return true },
		get: func(s *Scaling) (string, bool) { return string(s.IdleMode), s.IdleMode != "" },
		valid: func(s *Scaling) bool {
			return s.IdleMode == IdleModeStop || s.IdleMode == IdleModeFreeze || s.IdleMode == IdleModeReserve
		},
	},
	durationField(StandbyRetentionAnnotation, "", MinStandbyRetention, MaxStandbyRetention, false,
		func(s *Scaling) **time.Duration { return &s.StandbyRetention }),
}, reservedFields()...)

func validIdlePath(p string) bool {
	if !strings.HasPrefix(p, "/") || len(p) > MaxIdleCheckPathLength {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] <= ' ' || p[i] > '~' {
			return false
		}
	}
	return true
}

// scheduleField is FloorScheduleAnnotation: its error says which window
// and which part of it is wrong.
func scheduleField() scalingField {
	f := ptrField(FloorScheduleAnnotation, "", scheduleSyntax, ParseSchedule, Schedule.String,
		func(s Schedule) bool { return !s.IsZero() }, func(s *Scaling) **Schedule { return &s.FloorSchedule })
	f.detail = func(v string) string {
		if _, err := ParseSchedule(v); err != nil {
			return err.Error()
		}
		return ""
	}
	return f
}

// ParseAnnotations builds a Scaling from Knative autoscaling annotations
// and zeroscale's own (ZeroscalePrefix: FloorScheduleAnnotation,
// FloorLeadTimeAnnotation, IdleCheckPathAnnotation, IdleModeAnnotation,
// StandbyRetentionAnnotation, ReservedCPUAnnotation, ReservedMemoryAnnotation,
// ReservedNiceAnnotation).
//
// Keys outside AnnotationPrefix are ignored (under ZeroscalePrefix, all
// but those, which other parsers such as ParseSocketActivation
// read), so a template's whole annotation map can be passed. Under
// AnnotationPrefix, every key of this
// package (MinScaleAnnotation, …) is accepted, as is its legacy camelCase
// spelling (autoscaling.knative.dev/minScale, maxScale, initialScale,
// targetUtilizationPercentage, panicWindowPercentage,
// panicThresholdPercentage, scaleDownDelay, targetBurstCapacity,
// scaleToZeroPodRetentionPeriod, metricAggregationAlgorithm; target,
// metric, window and activation-scale never had one), and
// ClassAnnotation with the value KPAClass. The algorithm value
// "weightedExponential" is read as "weighted-exponential". Unlike Knative, which ignores
// unknown keys, any other key under AnnotationPrefix is an error: a typo such
// as "min-scales" would otherwise silently do nothing. Giving both
// spellings of one setting is an error too, even with equal values: which
// one wins would otherwise be a guess.
//
// Durations are Go duration strings ("60s", "1m30s"); a bare number
// other than "0" is rejected, as in Knative. Integers are decimal;
// other numbers are what strconv.ParseFloat accepts, finite only (Knative
// lets NaN through some checks).
//
// All problems are reported at once, joined; each is a *FieldError naming
// the key as given, the value and the allowed range.
func ParseAnnotations(annotations map[string]string) (Scaling, error) {
	var s Scaling
	var errs errList
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		if _, ours := lookupField(k); strings.HasPrefix(k, AnnotationPrefix) || (ours && strings.HasPrefix(k, ZeroscalePrefix)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	seen := make(map[string]string, len(keys)) // canonical key -> key as given
	for _, k := range keys {
		v := annotations[k]
		if k == ClassAnnotation {
			if v != KPAClass {
				errs.add(k, v, fmt.Sprintf("%q (the only autoscaler class implemented)", KPAClass))
			}
			continue
		}
		f, ok := lookupField(k)
		if !ok {
			errs.add(k, v, "a known autoscaling.knative.dev/ annotation (unknown key)")
			continue
		}
		if prev, dup := seen[f.key]; dup {
			errs.add(k, v, fmt.Sprintf("not given together with %s (the same setting)", prev))
			continue
		}
		seen[f.key] = k
		if !f.set(&s, v) || !f.valid(&s) {
			allowed := f.allowed
			if f.detail != nil {
				if d := f.detail(v); d != "" {
					allowed += "; here " + d
				}
			}
			errs.add(k, v, allowed)
		}
	}
	if len(errs) == 0 {
		s.crossCheck(&errs, seen)
	}
	if err := errs.err(); err != nil {
		return Scaling{}, err
	}
	return s, nil
}

func lookupField(key string) (*scalingField, bool) {
	for i := range scalingFields {
		if f := &scalingFields[i]; f.key == key || (f.legacy != "" && f.legacy == key) {
			return f, true
		}
	}
	return nil, false
}

// crossCheck validates the relations between fields: min ≤ max when
// max > 0, and min ≤ activation ≤ max. keys maps canonical keys to the
// spelling used in errors (nil = canonical).
func (s *Scaling) crossCheck(errs *errList, keys map[string]string) {
	name := func(k string) string {
		if g, ok := keys[k]; ok {
			return g
		}
		return k
	}
	maxSet := s.MaxScale != nil && *s.MaxScale > 0
	if s.MinScale != nil && maxSet && *s.MinScale > *s.MaxScale {
		errs.add(name(MaxScaleAnnotation), strconv.Itoa(*s.MaxScale),
			fmt.Sprintf("≥ %s (%d), or 0 for unlimited", name(MinScaleAnnotation), *s.MinScale))
	}
	if f := s.FloorSchedule; f != nil && maxSet && f.Max() > *s.MaxScale {
		errs.add(name(FloorScheduleAnnotation), f.String(),
			fmt.Sprintf("floors ≤ %s (%d): the largest is %d", name(MaxScaleAnnotation), *s.MaxScale, f.Max()))
	}
	if a := s.ActivationScale; a != nil {
		if s.MinScale != nil && *a < *s.MinScale {
			errs.add(name(ActivationScaleAnnotation), strconv.Itoa(*a),
				fmt.Sprintf("≥ %s (%d)", name(MinScaleAnnotation), *s.MinScale))
		}
		if maxSet && *a > *s.MaxScale {
			errs.add(name(ActivationScaleAnnotation), strconv.Itoa(*a),
				fmt.Sprintf("≤ %s (%d)", name(MaxScaleAnnotation), *s.MaxScale))
		}
	}
}

// Annotations renders s as Knative annotations with the current (not
// legacy) key names. Unset fields are omitted, so a zero Scaling renders
// as an empty map. ParseAnnotations(s.Annotations()) returns s for any
// valid s.
func (s Scaling) Annotations() map[string]string {
	m := make(map[string]string)
	for i := range scalingFields {
		if v, ok := scalingFields[i].get(&s); ok {
			m[scalingFields[i].key] = v
		}
	}
	return m
}

// Validate checks every set field against the same ranges as
// ParseAnnotations, and the relations between fields (min ≤ max when
// max > 0, min ≤ activation ≤ max). Errors name the annotation key.
// Settings that depend on the host (initial scale 0, max-scale-limit,
// min-scale against the host's max-scale) are checked by autoscaler.Config.Resolve.
func (s Scaling) Validate() error {
	var errs errList
	for i := range scalingFields {
		f := &scalingFields[i]
		if v, ok := f.get(&s); ok && !f.valid(&s) {
			errs.add(f.key, v, f.allowed)
		}
	}
	s.crossCheck(&errs, nil)
	return errs.err()
}

// clone returns a deep copy of s: no pointer is shared.
func (s Scaling) clone() Scaling {
	for i := range scalingFields {
		if u := scalingFields[i].unshare; u != nil {
			u(&s)
		}
	}
	return s
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
