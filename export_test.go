package zeroscale

import "time"

// SetHistoryStep shortens the status page's sampling step, so a test
// sees a chart fill in a second instead of minutes.
func SetHistoryStep(o *Options, d time.Duration) { o.historyStep = d }
