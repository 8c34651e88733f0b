package revision

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"
)

const p = AnnotationPrefix

// TestParseAnnotationsAccepted covers every key, new and legacy spelling,
// at and inside the edges of its range.
func TestParseAnnotationsAccepted(t *testing.T) {
	tests := []struct {
		key, value string
		want       Scaling
	}{
		{MinScaleAnnotation, "0", Scaling{MinScale: new(0)}},
		{MinScaleAnnotation, "3", Scaling{MinScale: new(3)}},
		{p + "minScale", "2147483647", Scaling{MinScale: new(math.MaxInt32)}},
		{MaxScaleAnnotation, "0", Scaling{MaxScale: new(0)}},
		{p + "maxScale", "10", Scaling{MaxScale: new(10)}},
		{InitialScaleAnnotation, "0", Scaling{InitialScale: new(0)}},
		{p + "initialScale", "5", Scaling{InitialScale: new(5)}},
		{ActivationScaleAnnotation, "2", Scaling{ActivationScale: new(2)}},
		{ActivationScaleAnnotation, "100", Scaling{ActivationScale: new(100)}},
		{TargetAnnotation, "0.01", Scaling{Target: new(0.01)}},
		{TargetAnnotation, "10", Scaling{Target: new(10.0)}},
		{TargetAnnotation, "1e6", Scaling{Target: new(1e6)}},
		{TargetUtilizationPercentageAnnotation, "1", Scaling{TargetUtilizationPercentage: new(1.0)}},
		{p + "targetUtilizationPercentage", "100", Scaling{TargetUtilizationPercentage: new(100.0)}},
		{TargetUtilizationPercentageAnnotation, "85.5", Scaling{TargetUtilizationPercentage: new(85.5)}},
		{MetricAnnotation, "concurrency", Scaling{Metric: MetricConcurrency}},
		{MetricAnnotation, "rps", Scaling{Metric: MetricRPS}},
		{WindowAnnotation, "6s", Scaling{Window: new(6 * time.Second)}},
		{WindowAnnotation, "1h", Scaling{Window: new(time.Hour)}},
		{WindowAnnotation, "1m30s", Scaling{Window: new(90 * time.Second)}},
		{PanicWindowPercentageAnnotation, "1", Scaling{PanicWindowPercentage: new(1.0)}},
		{p + "panicWindowPercentage", "100", Scaling{PanicWindowPercentage: new(100.0)}},
		{PanicThresholdPercentageAnnotation, "110", Scaling{PanicThresholdPercentage: new(110.0)}},
		{p + "panicThresholdPercentage", "1000", Scaling{PanicThresholdPercentage: new(1000.0)}},
		{ScaleDownDelayAnnotation, "0s", Scaling{ScaleDownDelay: new(time.Duration(0))}},
		{ScaleDownDelayAnnotation, "0", Scaling{ScaleDownDelay: new(time.Duration(0))}},
		{p + "scaleDownDelay", "1h", Scaling{ScaleDownDelay: new(time.Hour)}},
		{TargetBurstCapacityAnnotation, "-1", Scaling{TargetBurstCapacity: new(-1.0)}},
		{TargetBurstCapacityAnnotation, "0", Scaling{TargetBurstCapacity: new(0.0)}},
		{p + "targetBurstCapacity", "211", Scaling{TargetBurstCapacity: new(211.0)}},
		{ScaleToZeroPodRetentionPeriodAnnotation, "0s", Scaling{ScaleToZeroPodRetentionPeriod: new(time.Duration(0))}},
		{ScaleToZeroPodRetentionPeriodAnnotation, "1.5s", Scaling{ScaleToZeroPodRetentionPeriod: new(1500 * time.Millisecond)}},
		{p + "scaleToZeroPodRetentionPeriod", "1h", Scaling{ScaleToZeroPodRetentionPeriod: new(time.Hour)}},
		{MetricAggregationAlgorithmAnnotation, "linear", Scaling{MetricAggregationAlgorithm: AlgorithmLinear}},
		{MetricAggregationAlgorithmAnnotation, "weighted-exponential", Scaling{MetricAggregationAlgorithm: AlgorithmWeightedExponential}},
		{MetricAggregationAlgorithmAnnotation, "weightedExponential", Scaling{MetricAggregationAlgorithm: AlgorithmWeightedExponential}},
		{p + "metricAggregationAlgorithm", "linear", Scaling{MetricAggregationAlgorithm: AlgorithmLinear}},
		{ClassAnnotation, KPAClass, Scaling{}},
		{"serving.knative.dev/rollout-duration", "anything", Scaling{}},
		{"autoscaling.internal.knative.dev/x", "ignored", Scaling{}},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			got, err := ParseAnnotations(map[string]string{tt.key: tt.value})
			if err != nil {
				t.Fatalf("ParseAnnotations: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %s, want %s", fmtScaling(got), fmtScaling(tt.want))
			}
			if err := got.Validate(); err != nil {
				t.Fatalf("Validate of a parsed Scaling: %v", err)
			}
		})
	}
}

// TestParseAnnotationsRejected covers every key just outside its range
// and malformed: the error names the key as given, and the value.
func TestParseAnnotationsRejected(t *testing.T) {
	tests := []struct{ key, value, allowed string }{
		{MinScaleAnnotation, "-1", "[0, 2147483647]"},
		{p + "minScale", "1.5", "[0, 2147483647]"},
		{MinScaleAnnotation, "2147483648", "[0, 2147483647]"},
		{MinScaleAnnotation, "", "[0, 2147483647]"},
		{MaxScaleAnnotation, "-1", "[0, 2147483647]"},
		{p + "maxScale", "ten", "[0, 2147483647]"},
		{InitialScaleAnnotation, "-1", "[0, 2147483647]"},
		{p + "initialScale", "x", "[0, 2147483647]"},
		{ActivationScaleAnnotation, "1", "[2, 2147483647]"},
		{ActivationScaleAnnotation, "0", "[2, 2147483647]"},
		{ActivationScaleAnnotation, "-3", "[2, 2147483647]"},
		{TargetAnnotation, "0.009", "≥ 0.01"},
		{TargetAnnotation, "0", "≥ 0.01"},
		{TargetAnnotation, "NaN", "≥ 0.01"},
		{TargetAnnotation, "+Inf", "≥ 0.01"},
		{TargetAnnotation, "1e400", "≥ 0.01"},
		{TargetUtilizationPercentageAnnotation, "0.99", "[1, 100]"},
		{p + "targetUtilizationPercentage", "100.01", "[1, 100]"},
		{MetricAnnotation, "cpu", `"concurrency" or "rps"`},
		{MetricAnnotation, "RPS", `"concurrency" or "rps"`},
		{MetricAnnotation, "", `"concurrency" or "rps"`},
		{WindowAnnotation, "5s", "[6s, 1h0m0s], whole seconds"},
		{WindowAnnotation, "1h0m1s", "[6s, 1h0m0s], whole seconds"},
		{WindowAnnotation, "6500ms", "whole seconds"},
		{WindowAnnotation, "60", "a Go duration"},
		{PanicWindowPercentageAnnotation, "0.5", "[1, 100]"},
		{p + "panicWindowPercentage", "101", "[1, 100]"},
		{PanicThresholdPercentageAnnotation, "109.9", "[110, 1000]"},
		{p + "panicThresholdPercentage", "1001", "[110, 1000]"},
		{ScaleDownDelayAnnotation, "-1s", "[0s, 1h0m0s], whole seconds"},
		{p + "scaleDownDelay", "61m", "[0s, 1h0m0s], whole seconds"},
		{ScaleDownDelayAnnotation, "1.5s", "whole seconds"},
		{TargetBurstCapacityAnnotation, "-2", "≥ 0, or exactly -1"},
		{p + "targetBurstCapacity", "-0.5", "≥ 0, or exactly -1"},
		{TargetBurstCapacityAnnotation, "NaN", "≥ 0, or exactly -1"},
		{ScaleToZeroPodRetentionPeriodAnnotation, "-1ns", "[0s, 1h0m0s]"},
		{p + "scaleToZeroPodRetentionPeriod", "2h", "[0s, 1h0m0s]"},
		{MetricAggregationAlgorithmAnnotation, "median", `"linear" or "weighted-exponential"`},
		{p + "metricAggregationAlgorithm", "Linear", `"linear" or "weighted-exponential"`},
		{ClassAnnotation, "hpa.autoscaling.knative.dev", KPAClass},
		{p + "min-scales", "1", "unknown key"},
		{p + "minscale", "1", "unknown key"},
		{p + "activationScale", "2", "unknown key"}, // Knative has no legacy spelling for it
		{p, "1", "unknown key"},
	}
	for _, tt := range tests {
		t.Run(tt.key+"="+tt.value, func(t *testing.T) {
			got, err := ParseAnnotations(map[string]string{tt.key: tt.value})
			if err == nil {
				t.Fatalf("ParseAnnotations accepted it: %s", fmtScaling(got))
			}
			requireFieldError(t, err, tt.key, tt.value, tt.allowed)
			if !reflect.DeepEqual(got, Scaling{}) {
				t.Errorf("got %s with an error, want the zero Scaling", fmtScaling(got))
			}
		})
	}
}

// requireFieldError checks that err holds a *FieldError for field with
// value, whose message also says what is allowed.
func requireFieldError(t *testing.T, err error, field, value, allowed string) {
	t.Helper()
	var all []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	} else {
		all = []error{err}
	}
	for _, e := range all {
		if _, nested := e.(interface{ Unwrap() []error }); nested {
			t.Fatalf("error %q nests joined errors", err)
		}
		var fe *FieldError
		if errors.As(e, &fe) && fe.Field == field && fe.Value == value {
			if !strings.Contains(fe.Error(), allowed) {
				t.Fatalf("error %q does not say %q is allowed", fe, allowed)
			}
			if !strings.Contains(err.Error(), field) {
				t.Fatalf("error %q does not name %s", err, field)
			}
			return
		}
	}
	t.Fatalf("error %q has no FieldError for %s=%q", err, field, value)
}

// rejectCase is one invalid value: mutate turns a valid T into one whose
// field is rejected with value.
type rejectCase[T any] struct {
	field, value string
	mutate       func(*T)
}

// testRejects runs each case in a subtest on a fresh valid() and requires
// validate's error to hold a FieldError for the case's field and value.
func testRejects[T any](t *testing.T, valid func() T, validate func(*testing.T, T) error, tests []rejectCase[T]) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.field+"="+tt.value, func(t *testing.T) {
			v := valid()
			tt.mutate(&v)
			err := validate(t, v)
			if err == nil {
				t.Fatal("accepted")
			}
			requireFieldError(t, err, tt.field, tt.value, "")
		})
	}
}

func TestParseAnnotationsCrossField(t *testing.T) {
	tests := []struct {
		name        string
		anns        map[string]string
		field, val  string
		allowedPart string
	}{
		{"min above max", map[string]string{MinScaleAnnotation: "5", MaxScaleAnnotation: "3"},
			MaxScaleAnnotation, "3", "≥ " + MinScaleAnnotation + " (5)"},
		{"legacy spellings named as given", map[string]string{p + "minScale": "5", p + "maxScale": "3"},
			p + "maxScale", "3", "≥ " + p + "minScale (5)"},
		{"activation below min", map[string]string{MinScaleAnnotation: "4", ActivationScaleAnnotation: "3"},
			ActivationScaleAnnotation, "3", "≥ " + MinScaleAnnotation + " (4)"},
		{"activation above max", map[string]string{MaxScaleAnnotation: "4", ActivationScaleAnnotation: "5"},
			ActivationScaleAnnotation, "5", "≤ " + MaxScaleAnnotation + " (4)"},
		{"both spellings", map[string]string{MinScaleAnnotation: "1", p + "minScale": "1"},
			p + "minScale", "1", "not given together with " + MinScaleAnnotation},
		{"both spellings of the algorithm", map[string]string{MetricAggregationAlgorithmAnnotation: "linear", p + "metricAggregationAlgorithm": "linear"},
			p + "metricAggregationAlgorithm", "linear", "the same setting"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseAnnotations(tt.anns)
			if err == nil {
				t.Fatal("accepted")
			}
			requireFieldError(t, err, tt.field, tt.val, tt.allowedPart)
		})
	}

	for _, ok := range []map[string]string{
		{MinScaleAnnotation: "5", MaxScaleAnnotation: "0"}, // 0 = unlimited
		{MinScaleAnnotation: "5", MaxScaleAnnotation: "5", ActivationScaleAnnotation: "5"},
		{MinScaleAnnotation: "1", MaxScaleAnnotation: "9", ActivationScaleAnnotation: "3"},
		{ActivationScaleAnnotation: "50"},
	} {
		if _, err := ParseAnnotations(ok); err != nil {
			t.Errorf("ParseAnnotations(%v): %v", ok, err)
		}
	}
}

func TestParseAnnotationsReportsEveryError(t *testing.T) {
	_, err := ParseAnnotations(map[string]string{
		WindowAnnotation:  "1s",
		MetricAnnotation:  "cpu",
		p + "nonsense":    "1",
		"other.io/ignore": "x",
	})
	requireFieldError(t, err, WindowAnnotation, "1s", "[6s")
	requireFieldError(t, err, MetricAnnotation, "cpu", "rps")
	requireFieldError(t, err, p+"nonsense", "1", "unknown key")
}

func fullScaling() Scaling {
	return Scaling{
		MinScale:                      new(1),
		MaxScale:                      new(20),
		InitialScale:                  new(3),
		ActivationScale:               new(2),
		Target:                        new(12.5),
		TargetUtilizationPercentage:   new(80.0),
		Metric:                        MetricRPS,
		Window:                        new(90 * time.Second),
		PanicWindowPercentage:         new(12.5),
		PanicThresholdPercentage:      new(300.0),
		ScaleDownDelay:                new(15 * time.Minute),
		TargetBurstCapacity:           new(-1.0),
		ScaleToZeroPodRetentionPeriod: new(1500 * time.Millisecond),
		MetricAggregationAlgorithm:    AlgorithmWeightedExponential,
		FloorSchedule:                 new(mustSchedule("Mon-Fri 08:00-18:00 Europe/Berlin = 2")),
		FloorLeadTime:                 new(10 * time.Minute),
		IdleCheckPath:                 "/idle",
		IdleMode:                      IdleModeFreeze,
		StandbyRetention:              new(90 * time.Second),
		ReservedCPUMillis:             new(int64(250)),
		ReservedMemoryBytes:           new(int64(128 << 20)),
		ReservedNice:                  new(12),
	}
}

func mustSchedule(expr string) Schedule {
	s, err := ParseSchedule(expr)
	if err != nil {
		panic(err)
	}
	return s
}

func TestScalingAnnotationsRoundTrip(t *testing.T) {
	s := fullScaling()
	anns := s.Annotations()
	if len(anns) != len(scalingFields) {
		t.Fatalf("a fully set Scaling rendered %d annotations, want %d: %v", len(anns), len(scalingFields), anns)
	}
	want := map[string]string{
		MinScaleAnnotation:                      "1",
		MaxScaleAnnotation:                      "20",
		InitialScaleAnnotation:                  "3",
		ActivationScaleAnnotation:               "2",
		TargetAnnotation:                        "12.5",
		TargetUtilizationPercentageAnnotation:   "80",
		MetricAnnotation:                        "rps",
		WindowAnnotation:                        "1m30s",
		PanicWindowPercentageAnnotation:         "12.5",
		PanicThresholdPercentageAnnotation:      "300",
		ScaleDownDelayAnnotation:                "15m0s",
		TargetBurstCapacityAnnotation:           "-1",
		ScaleToZeroPodRetentionPeriodAnnotation: "1.5s",
		MetricAggregationAlgorithmAnnotation:    "weighted-exponential",
		FloorScheduleAnnotation:                 "Mon-Fri 08:00-18:00 Europe/Berlin = 2",
		FloorLeadTimeAnnotation:                 "10m0s",
		IdleCheckPathAnnotation:                 "/idle",
		IdleModeAnnotation:                      "freeze",
		StandbyRetentionAnnotation:              "1m30s",
		ReservedCPUAnnotation:                   "250m",
		ReservedMemoryAnnotation:                "128Mi",
		ReservedNiceAnnotation:                  "12",
	}
	if !reflect.DeepEqual(anns, want) {
		t.Fatalf("Annotations() = %v\nwant %v", anns, want)
	}
	back, err := ParseAnnotations(anns)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Fatalf("round trip: got %s, want %s", fmtScaling(back), fmtScaling(s))
	}
	if got := (Scaling{}).Annotations(); len(got) != 0 {
		t.Fatalf("zero Scaling renders %v, want none", got)
	}
}

// TestScalingFieldsCoverStruct guards the field table: every Scaling
// field must be parsed, rendered and validated by it.
func TestScalingFieldsCoverStruct(t *testing.T) {
	if n := reflect.TypeFor[Scaling]().NumField(); n != len(scalingFields) {
		t.Fatalf("Scaling has %d fields but the annotation table has %d", n, len(scalingFields))
	}
	orig := fullScaling()
	c := orig.clone()
	if got := len(c.Annotations()); got != len(scalingFields) {
		t.Fatalf("clone lost fields: %d rendered", got)
	}
	ov, cv := reflect.ValueOf(orig), reflect.ValueOf(c)
	for i := range ov.NumField() {
		if ov.Field(i).Kind() == reflect.Pointer && ov.Field(i).Pointer() == cv.Field(i).Pointer() {
			t.Errorf("clone shares Scaling.%s", ov.Type().Field(i).Name)
		}
	}
}

func TestScalingValidate(t *testing.T) {
	if err := fullScaling().Validate(); err != nil {
		t.Fatalf("valid: %v", err)
	}
	if err := (Scaling{}).Validate(); err != nil {
		t.Fatalf("zero: %v", err)
	}
	tests := []struct {
		mutate       func(*Scaling)
		field, value string
	}{
		{func(s *Scaling) { s.MinScale = new(-1) }, MinScaleAnnotation, "-1"},
		{func(s *Scaling) { s.MaxScale = new(math.MaxInt32 + 1) }, MaxScaleAnnotation, "2147483648"},
		{func(s *Scaling) { s.ActivationScale = new(1) }, ActivationScaleAnnotation, "1"},
		{func(s *Scaling) { s.Target = new(math.NaN()) }, TargetAnnotation, "NaN"},
		{func(s *Scaling) { s.Metric = "cpu" }, MetricAnnotation, "cpu"},
		{func(s *Scaling) { s.Window = new(6500 * time.Millisecond) }, WindowAnnotation, "6.5s"},
		{func(s *Scaling) { s.MetricAggregationAlgorithm = "weightedExponential" }, MetricAggregationAlgorithmAnnotation, "weightedExponential"},
		{func(s *Scaling) { s.MinScale = new(30) }, MaxScaleAnnotation, "20"},
		{func(s *Scaling) { s.ActivationScale = new(21) }, ActivationScaleAnnotation, "21"},
	}
	for _, tt := range tests {
		s := fullScaling()
		tt.mutate(&s)
		err := s.Validate()
		if err == nil {
			t.Errorf("%s=%s accepted", tt.field, tt.value)
			continue
		}
		requireFieldError(t, err, tt.field, tt.value, "")
	}
}

// fmtScaling renders s readably for failure messages.
func fmtScaling(s Scaling) string {
	anns := s.Annotations()
	var b strings.Builder
	b.WriteString("{")
	for _, f := range scalingFields {
		if v, ok := anns[f.key]; ok {
			b.WriteString(strings.TrimPrefix(f.key, p) + "=" + v + " ")
		}
	}
	b.WriteString("}")
	return b.String()
}

// FuzzParseAnnotations checks that no input panics, that errors are
// FieldErrors naming a given key, and that anything accepted is valid and
// survives ParseAnnotations → Annotations → ParseAnnotations unchanged.
func FuzzParseAnnotations(f *testing.F) {
	f.Add(uint8(0), "1", uint8(1), "3", "", "")
	f.Add(uint8(7), "60s", uint8(13), "weightedExponential", "class", KPAClass)
	f.Add(uint8(4), "0.01", uint8(11), "-1", "minScale", "2")
	f.Add(uint8(3), "2", uint8(0), "0", "window", "1h")
	f.Add(uint8(10), "1.5s", uint8(12), "0", "bogus", "x")
	f.Add(uint8(200), "NaN", uint8(9), "1e309", "", "")
	var keys []string
	for _, fl := range scalingFields {
		keys = append(keys, fl.key)
		if fl.legacy != "" {
			keys = append(keys, fl.legacy)
		}
	}
	keys = append(keys, ClassAnnotation)
	f.Fuzz(func(t *testing.T, k1 uint8, v1 string, k2 uint8, v2 string, rawKey, v3 string) {
		anns := map[string]string{
			keys[int(k1)%len(keys)]: v1,
			keys[int(k2)%len(keys)]: v2,
		}
		if rawKey != "" {
			anns[p+rawKey] = v3
		}
		s, err := ParseAnnotations(anns)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			if _, given := anns[fe.Field]; !given {
				t.Fatalf("error names %q, which was not given: %v", fe.Field, err)
			}
			if !reflect.DeepEqual(s, Scaling{}) {
				t.Fatalf("non-zero Scaling returned with an error")
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted %v but Validate says %v", anns, err)
		}
		rendered := s.Annotations()
		back, err := ParseAnnotations(rendered)
		if err != nil {
			t.Fatalf("re-parsing %v (from %v): %v", rendered, anns, err)
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip of %v: got %s, want %s", anns, fmtScaling(back), fmtScaling(s))
		}
		if !reflect.DeepEqual(back.Annotations(), rendered) {
			t.Fatalf("rendering is not stable: %v then %v", rendered, back.Annotations())
		}
	})
}
