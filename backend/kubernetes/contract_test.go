package kubernetes_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/kubernetes"
	"github.com/zeroscale/zeroscale/revision"
)

// newBackend returns a Backend on the lab cluster in a fresh namespace.
func newBackend(t *testing.T, o kubernetes.Options) *kubernetes.Backend {
	t.Helper()
	c := lab.Cluster(t)
	o.Config = c.Config
	o.Namespace = lab.Namespace(t)
	if o.QueueProxyImage == "" {
		o.QueueProxyImage = queueImage
	}
	if o.QuietPeriod == 0 {
		o.QuietPeriod = 2 * time.Second
	}
	b, err := kubernetes.New(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

func TestContract(t *testing.T) {
	backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
		b := newBackend(t, kubernetes.Options{Drain: cfg.Drain, DrainTimeout: time.Minute})
		return backendtest.Harness{
			Backend: b,
			Spec:    revision.Spec{Image: appImage},
			Timeout: 30 * time.Second,
		}
	})
}
