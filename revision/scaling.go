package revision

import "time"

// Metric is the autoscaling metric of a revision.
type Metric string

// Metrics the KPA supports.
const (
	MetricConcurrency Metric = "concurrency"
	MetricRPS         Metric = "rps"
)

// Algorithm is how a metric window is averaged.
type Algorithm string

// Window averaging algorithms.
const (
	AlgorithmLinear              Algorithm = "linear"
	AlgorithmWeightedExponential Algorithm = "weighted-exponential"
)

// Annotation keys, Knative's names. Legacy camelCase spellings
// (autoscaling.knative.dev/minScale, …) are accepted by ParseAnnotations.
const (
	AnnotationPrefix                        = "autoscaling.knative.dev/"
	MinScaleAnnotation                      = AnnotationPrefix + "min-scale"
	MaxScaleAnnotation                      = AnnotationPrefix + "max-scale"
	InitialScaleAnnotation                  = AnnotationPrefix + "initial-scale"
	ActivationScaleAnnotation               = AnnotationPrefix + "activation-scale"
	TargetAnnotation                        = AnnotationPrefix + "target"
	TargetUtilizationPercentageAnnotation   = AnnotationPrefix + "target-utilization-percentage"
	MetricAnnotation                        = AnnotationPrefix + "metric"
	WindowAnnotation                        = AnnotationPrefix + "window"
	PanicWindowPercentageAnnotation         = AnnotationPrefix + "panic-window-percentage"
	PanicThresholdPercentageAnnotation      = AnnotationPrefix + "panic-threshold-percentage"
	ScaleDownDelayAnnotation                = AnnotationPrefix + "scale-down-delay"
	TargetBurstCapacityAnnotation           = AnnotationPrefix + "target-burst-capacity"
	ScaleToZeroPodRetentionPeriodAnnotation = AnnotationPrefix + "scale-to-zero-pod-retention-period"
	MetricAggregationAlgorithmAnnotation    = AnnotationPrefix + "metric-aggregation-algorithm"
)

// Scaling holds a revision's own autoscaling settings. A nil pointer (or
// empty string) means "not set": the host's Config default applies.
// ParseAnnotations builds one from Knative annotations; Annotations
// renders it back.
type Scaling struct {
	MinScale                      *int
	MaxScale                      *int
	InitialScale                  *int
	ActivationScale               *int
	Target                        *float64
	TargetUtilizationPercentage   *float64
	Metric                        Metric
	Window                        *time.Duration
	PanicWindowPercentage         *float64
	PanicThresholdPercentage      *float64
	ScaleDownDelay                *time.Duration
	TargetBurstCapacity           *float64
	ScaleToZeroPodRetentionPeriod *time.Duration
	MetricAggregationAlgorithm    Algorithm
}

// Config is the host-wide autoscaling configuration: Knative's
// config-autoscaler ConfigMap. DefaultConfig returns Knative's defaults;
// hosts copy and override it.
type Config struct {
	StableWindow                      time.Duration // 60 s; 6 s–1 h
	PanicWindowPercentage             float64       // 10; 1–100
	PanicThresholdPercentage          float64       // 200; 110–1000
	TargetUtilizationPercentage       float64       // 70; (0, 100]
	ContainerConcurrencyTargetDefault float64       // 100; ≥ 0.01
	RPSTargetDefault                  float64       // 200; ≥ 0.01
	MaxScaleUpRate                    float64       // 1000; > 1
	MaxScaleDownRate                  float64       // 2; > 1
	EnableScaleToZero                 bool          // true
	ScaleToZeroGracePeriod            time.Duration // 30 s; > 0
	ScaleToZeroPodRetentionPeriod     time.Duration // 0; 0–1 h
	ScaleDownDelay                    time.Duration // 0; 0–1 h
	TargetBurstCapacity               float64       // 211; ≥ 0 or -1
	ActivatorCapacity                 float64       // 100; ≥ 1
	InitialScale                      int           // 1; ≥ 1 (≥ 0 with AllowZeroInitialScale)
	AllowZeroInitialScale             bool          // false
	MinScale                          int           // 0
	MaxScale                          int           // 0 = unlimited
	MaxScaleLimit                     int           // 0 = none
}

// ScalingParams are a revision's effective autoscaling parameters: its
// Scaling settings resolved against a Config and its ContainerConcurrency.
// The autoscaler consumes these; nothing in them is optional.
type ScalingParams struct {
	Metric                        Metric
	Algorithm                     Algorithm
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
	MaxScale                      int // 0 = unlimited
	InitialScale                  int
	ActivationScale               int // 0 or 1 = off
	ScaleDownDelay                time.Duration
	TargetBurstCapacity           float64
	ActivatorCapacity             float64
	EnableScaleToZero             bool
	ScaleToZeroGracePeriod        time.Duration
	ScaleToZeroPodRetentionPeriod time.Duration
}
