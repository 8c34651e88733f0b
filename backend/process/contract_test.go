package process_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/queueproxy"
)

func TestContract(t *testing.T) {
	runContract(t, process.Options{})
}

// TestContractQueueProxy runs the contract with every instance fronted by
// a queue-proxy, as the zeroscale Server runs them.
func TestContractQueueProxy(t *testing.T) {
	runContract(t, process.Options{Proxy: process.QueueProxy(queueproxy.Options{})})
}

func runContract(t *testing.T, opts process.Options) {
	spec, err := testapp.Spec(testapp.Options{})
	require.NoError(t, err)
	backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		opts.Drain = cfg.Drain
		opts.DrainTimeout = 2 * eventTimeout
		return backendtest.Harness{
			Backend: newBackend(t, opts),
			Spec:    spec,
			Timeout: eventTimeout,
		}
	})
}
