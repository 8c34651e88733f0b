package revision

import (
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/internal/bounds"
)

// ProgressDeadlineAnnotation is Knative's per-revision progress
// deadline annotation: a Go duration of whole seconds, parsed into
// Spec.ProgressDeadline by ParseProgressDeadline.
const ProgressDeadlineAnnotation = "serving.knative.dev/progress-deadline"

// ParseProgressDeadline reads ProgressDeadlineAnnotation from
// annotations: 0 when absent, else the duration, or a *FieldError
// naming the annotation and the allowed range.
func ParseProgressDeadline(annotations map[string]string) (time.Duration, error) {
	v, ok := annotations[ProgressDeadlineAnnotation]
	if !ok {
		return 0, nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(v))
	if err != nil || !bounds.ProgressDeadline(d) {
		var errs errList
		errs.add(ProgressDeadlineAnnotation, v, bounds.ProgressDeadlineRange)
		return 0, errs.err()
	}
	return d, nil
}
