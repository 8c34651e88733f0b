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

// Annotation keys of zeroscale's own settings, which Knative does not
// have. ParseAnnotations reads them beside the Knative ones.
const (
	ZeroscalePrefix = "zeroscale.dev/"
	// FloorScheduleAnnotation is a min-scale that follows a schedule
	// (see ParseSchedule): "Mon-Fri 08:00-18:00 Europe/Berlin = 2". The
	// effective min-scale is the larger of it and min-scale.
	FloorScheduleAnnotation = ZeroscalePrefix + "scale-floor-schedule"
	// FloorLeadTimeAnnotation starts every window of the floor schedule
	// this long before its start (pre-warming): a Go duration in [0, 24h].
	FloorLeadTimeAnnotation = ZeroscalePrefix + "scale-floor-lead-time"
	// IdleCheckPathAnnotation is a path on the app that is asked, before
	// the revision goes to zero, whether it is idle: 200 idle, 409 busy
	// (one more grace period); any other answer or none counts as idle.
	IdleCheckPathAnnotation = ZeroscalePrefix + "idle-check-path"
	// IdleModeAnnotation says what becomes of a revision whose autoscaler
	// would go to zero: see IdleMode.
	IdleModeAnnotation = ZeroscalePrefix + "idle-mode"
	// StandbyRetentionAnnotation is how long a frozen revision
	// (IdleModeFreeze) stays frozen without a request before its
	// instances are stopped for real: a Go duration in
	// [MinStandbyRetention, MaxStandbyRetention], DefaultStandbyRetention
	// when unset. Other idle modes ignore it.
	StandbyRetentionAnnotation = ZeroscalePrefix + "standby-retention"
)

// Bounds and default of zeroscale.dev/standby-retention. A frozen
// instance costs memory, not CPU: the retention bounds how long that
// memory is held for a revision nobody calls.
const (
	MinStandbyRetention     = time.Second
	MaxStandbyRetention     = 24 * time.Hour
	DefaultStandbyRetention = 15 * time.Minute
)

// IdleMode is what a revision keeps when its autoscaler would scale it
// to zero (zeroscale.dev/idle-mode). The modes exclude each other: one
// annotation carries the choice.
type IdleMode string

const (
	// IdleModeStop stops every instance, Knative's scale to zero (the
	// default).
	IdleModeStop IdleMode = "stop"
	// IdleModeFreeze freezes the instances instead of stopping them
	// (no CPU while idle) and thaws them on the next request; the engine
	// must be able to freeze.
	IdleModeFreeze IdleMode = "freeze"
	// IdleModeReserve keeps one reserved instance, started with a
	// cheaper resource profile, instead of none: it serves at once, and
	// retires once standard instances are ready.
	IdleModeReserve IdleMode = "reserve"
)

// MaxIdleCheckPathLength bounds zeroscale.dev/idle-check-path.
const MaxIdleCheckPathLength = 1024

// Scaling holds a revision's own autoscaling settings, one field per
// annotation (the field's doc names its key). A nil pointer (or empty
// string) means "not set": the host's autoscaler.Config value applies.
// ParseAnnotations builds one from Knative annotations, Annotations
// renders it back, Validate checks it against the ranges of Knative's
// webhook given below.
type Scaling struct {
	MinScale                      *int           // min-scale: ≥ 0
	MaxScale                      *int           // max-scale: ≥ 0, 0 = unlimited; ≥ min-scale when > 0
	InitialScale                  *int           // initial-scale: ≥ 0 (0 only if the host allows it)
	ActivationScale               *int           // activation-scale: ≥ 2, within [min-scale, max-scale]
	Target                        *float64       // target: ≥ 0.01, a per-instance total (see autoscaler.Config.Resolve)
	TargetUtilizationPercentage   *float64       // target-utilization-percentage: [1, 100]
	Metric                        Metric         // metric: concurrency or rps
	Window                        *time.Duration // window: [6s, 1h], whole seconds
	PanicWindowPercentage         *float64       // panic-window-percentage: [1, 100]
	PanicThresholdPercentage      *float64       // panic-threshold-percentage: [110, 1000]
	ScaleDownDelay                *time.Duration // scale-down-delay: [0, 1h], whole seconds
	TargetBurstCapacity           *float64       // target-burst-capacity: ≥ 0, or -1 = unlimited
	ScaleToZeroPodRetentionPeriod *time.Duration // scale-to-zero-pod-retention-period: [0, 1h]
	MetricAggregationAlgorithm    Algorithm      // metric-aggregation-algorithm: linear or weighted-exponential
	FloorSchedule                 *Schedule      // zeroscale.dev/scale-floor-schedule: see ParseSchedule
	FloorLeadTime                 *time.Duration // zeroscale.dev/scale-floor-lead-time: [0, 24h]
	IdleCheckPath                 string         // zeroscale.dev/idle-check-path: "/…", printable ASCII, ≤ 1024 bytes
	IdleMode                      IdleMode       // zeroscale.dev/idle-mode: stop, freeze or reserve
	StandbyRetention              *time.Duration // zeroscale.dev/standby-retention: [1s, 24h]
	ReservedCPUMillis             *int64         // zeroscale.dev/reserved-cpu: [10m, 256] (see Reserved)
	ReservedMemoryBytes           *int64         // zeroscale.dev/reserved-memory: [6Mi, 1Ti]
	ReservedNice                  *int           // zeroscale.dev/reserved-nice: [1, 19]
}
