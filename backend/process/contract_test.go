package process_test

import (
	"os"
	"testing"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/revision"
)

func TestContract(t *testing.T) {
	exe, err := os.Executable()
	noErr(t, err)
	backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		b := newBackend(t, process.Options{Drain: cfg.Drain, DrainTimeout: 2 * eventTimeout})
		return backendtest.Harness{
			Backend: b,
			Spec: revision.Spec{
				Command: []string{exe},
				Env:     appEnv(modeServe),
			},
			Timeout: eventTimeout,
		}
	})
}
