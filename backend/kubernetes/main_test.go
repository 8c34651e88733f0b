package kubernetes_test

import (
	"os"
	"testing"

	"github.com/zeroscale/zeroscale/internal/k8slab"
	"github.com/zeroscale/zeroscale/internal/testapp"
)

// Images the lab node runs: the test binary itself as the app
// (internal/testapp, listening on the pod IP), and the real
// cmd/queue-proxy as the sidecar.
const (
	appImage   = "zeroscale.test/backendtest-app:1"
	e2eImage   = "zeroscale.test/e2e-app:1"
	queueImage = "zeroscale.test/queue-proxy:1"
)

var lab = &k8slab.Lab{Prepare: k8slab.SelfImages(queueImage, testapp.HostEnv, map[string][]string{
	appImage: {testapp.ModeEnv + "=" + string(testapp.Serve)},
	// The e2e tests': GET / answers "$K_REVISION\n".
	e2eImage: {testapp.ModeEnv + "=" + string(testapp.Serve), testapp.RootEnv + "=revision", "GORACE=atexit_sleep_ms=0"},
})}

func TestMain(m *testing.M) {
	testapp.Main()
	code := m.Run()
	lab.Stop()
	os.Exit(code)
}
