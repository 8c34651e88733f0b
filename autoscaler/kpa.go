package autoscaler

import (
	"fmt"
	"math"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler/aggregation"
)

// TickInterval is how often the Multiscaler decides for each revision,
// and the granularity of the KPA's scale-down delay window (Knative's
// tickInterval).
const TickInterval = 2 * time.Second

// Observed is what a Decider decides from.
type Observed struct {
	// Stable and Panic are the metric (concurrency or requests per
	// second, revision totals) averaged over the stable and panic windows.
	Stable, Panic float64
	// Serving is the number of instances that take requests
	// (backend.Instance.Serving; may be 0).
	Serving int
	// Unreachable says no route sends traffic to the revision: scale-down
	// is then not rate-limited and the scale-down delay is skipped. The
	// zero value (reachable or unknown) is Knative's default.
	Unreachable bool
}

// Recommendation is one decision of a Decider.
type Recommendation struct {
	// DesiredScale is the number of instances wanted, before min/max
	// scale and scale to zero are applied.
	DesiredScale int
	// ExcessBurstCapacity is floor(serving × total − target burst capacity
	// − panic value): negative means the activator should stay in the
	// request path. 0 when the target burst capacity is 0, −1 when it is
	// −1 (activator always in path).
	ExcessBurstCapacity int
	// Panicking is true while the decider is in panic mode.
	Panicking bool
}

// Decider turns observed values into a recommendation. A Decider may keep
// state between calls (the KPA does) and is not safe for concurrent use
// unless it says so; now must not go backwards.
type Decider interface {
	Decide(now time.Time, o Observed) Recommendation
}

// KPAState is the KPA's state between decisions.
type KPAState struct {
	// Panicking is true in panic mode; PanicTime is when the panic
	// threshold was last exceeded.
	Panicking bool
	PanicTime time.Time
	// MaxPanicPods is the highest count decided in this panic (the
	// count never goes down while panicking).
	MaxPanicPods int
}

// KPA is Knative's pod autoscaler decider (pkg/autoscaler/scaling,
// Scale): stable and panic modes, rate limits, activation scale,
// scale-down delay and excess burst capacity. It is a plain value: no
// goroutines, no clock, no I/O; time only moves through Decide's now.
// It is not safe for concurrent use.
type KPA struct {
	params ScalingParams
	state  KPAState
	// delay is the scale-down delay window, nil without a delay. Like
	// Knative's it is sized once, at creation.
	delay *aggregation.Max
}

var _ Decider = (*KPA)(nil)

// NewKPA returns a KPA for p, created at now with serving instances
// taking requests. Like Knative's, a KPA created while more than one
// instance serves starts in panic mode holding that count, so that an autoscaler restart
// (which loses metric history) cannot scale down for a stable window.
func NewKPA(p ScalingParams, now time.Time, serving int) (*KPA, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	k := &KPA{params: p, state: KPAState{MaxPanicPods: max(serving, 0)}}
	if serving > 1 {
		k.state.Panicking, k.state.PanicTime = true, now
	}
	if p.ScaleDownDelay > 0 {
		d, err := aggregation.NewMax(p.ScaleDownDelay, TickInterval)
		if err != nil {
			return nil, fmt.Errorf("autoscaler: ScaleDownDelay %v: %w", p.ScaleDownDelay, err)
		}
		k.delay = d
	}
	return k, nil
}

// Params are the parameters the KPA decides with.
func (k *KPA) Params() ScalingParams { return k.params }

// State is the KPA's current state.
func (k *KPA) State() KPAState { return k.state }

var _ DeciderUpdater = (*KPA)(nil)

// Update replaces the parameters, keeping the state. As in Knative, the
// scale-down delay window keeps the size it was created with.
func (k *KPA) Update(p ScalingParams) error {
	if err := p.validate(); err != nil {
		return err
	}
	k.params = p
	return nil
}

// Decide makes one decision at now. It does not allocate.
func (k *KPA) Decide(now time.Time, o Observed) Recommendation {
	p := &k.params
	stable, panicV := finiteOrZero(o.Stable), finiteOrZero(o.Panic)

	// Zero serving instances count as one for the rate limits and the
	// panic ratio, so a revision at zero can scale up at all.
	serving := math.Max(1, float64(o.Serving))
	// ceil and floor guarantee a step of at least one instance either way.
	maxUp := math.Ceil(p.MaxScaleUpRate * serving)
	maxDown := 0.0
	if !o.Unreachable {
		maxDown = math.Floor(serving / p.MaxScaleDownRate)
	}

	dspc := math.Ceil(stable / p.TargetValue)
	dppc := math.Ceil(panicV / p.TargetValue)
	desiredStable := saturate(math.Min(math.Max(dspc, maxDown), maxUp))
	desiredPanic := saturate(math.Min(math.Max(dppc, maxDown), maxUp))

	// Activation scale is a floor for any non-zero demand.
	if a := p.ActivationScale; a > 1 {
		if dspc > 0 && a > desiredStable {
			desiredStable = a
		}
		if dppc > 0 && a > desiredPanic {
			desiredPanic = a
		}
	}

	// The ratio uses the unclamped, ceiled panic count: with 4 serving, a
	// target of 10 and a panic value of 70.5, 8/4 = 2 reaches a 200 %
	// threshold although 70.5 < 2 × 4 × 10.
	over := dppc/serving >= p.PanicThreshold
	switch {
	case over:
		// Start, or extend, the panic.
		k.state.Panicking, k.state.PanicTime = true, now
	case k.state.Panicking && k.state.PanicTime.Add(p.StableWindow).Before(now):
		// A full stable window has passed, strictly, since the last tick
		// over the threshold: the surge is in the stable average now.
		k.state = KPAState{}
	}

	desired := desiredStable
	if k.state.Panicking {
		desired = max(desired, desiredPanic)
		// Never scale down while panicking.
		k.state.MaxPanicPods = max(k.state.MaxPanicPods, desired)
		desired = k.state.MaxPanicPods
	}

	if k.delay != nil && !o.Unreachable {
		k.delay.Record(now, desired)
		desired = k.delay.Current()
	}

	return Recommendation{
		DesiredScale:        desired,
		ExcessBurstCapacity: excessBurstCapacity(p, max(o.Serving, 0), panicV),
		Panicking:           k.state.Panicking,
	}
}

// excessBurstCapacity is Knative's EBC from the actual serving count (which
// may be 0) and the panic value, so a spike pulls the activator back into
// the path quickly.
func excessBurstCapacity(p *ScalingParams, serving int, panicV float64) int {
	switch tbc := p.TargetBurstCapacity; {
	case tbc == 0:
		return 0
	case tbc > 0:
		return saturate(math.Floor(float64(serving)*p.TotalValue - tbc - panicV))
	default:
		return -1
	}
}

// saturate converts a whole float64 to int, clamping to int's range:
// Go's conversion of an out-of-range float is implementation-defined
// (on amd64 it gives math.MinInt), which would turn a huge demand or
// rate limit into a negative scale.
func saturate(f float64) int {
	switch {
	case f >= math.MaxInt: // float64(math.MaxInt) is 2^63, already out of range
		return math.MaxInt
	case f <= math.MinInt:
		return math.MinInt
	}
	return int(f)
}

func finiteOrZero(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}
