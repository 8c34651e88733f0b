package e2e_test

import (
	"time"

	"github.com/zeroscale/zeroscale/backend/process"
)

// processOptions bounds the process backend for tests: a stuck app is
// killed quickly rather than after the production grace periods.
func processOptions() process.Options {
	return process.Options{StopGrace: 2 * time.Second, StartTimeout: 30 * time.Second, DrainTimeout: 30 * time.Second}
}
