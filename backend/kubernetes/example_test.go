package kubernetes_test

import (
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/kubernetes"
)

// The queue-proxy sidecar's image is the one option without a default:
// there is no public image of cmd/queue-proxy to fall back on.
func ExampleNew() {
	_, err := kubernetes.New(kubernetes.Options{Kubeconfig: "testdata/none"})
	fmt.Println(err)
	// Output: kubernetes: Options.QueueProxyImage is required: an image of cmd/queue-proxy
}

// A Server in front of a cluster: every revision becomes a Deployment in
// namespace "apps" of the kubeconfig's cluster, scaled from zero by the
// Server's autoscaler, with stats scraped from the sidecars.
func ExampleNew_server() {
	_ = func() error {
		srv, err := zeroscale.New(zeroscale.Options{
			NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
				return kubernetes.New(kubernetes.Options{
					Kubeconfig:      "/home/me/.kube/config",
					Namespace:       "apps",
					QueueProxyImage: "registry.example.com/zeroscale/queue-proxy:v1",
					QuietPeriod:     30 * time.Second,
					Drain:           drain,
				})
			},
		})
		if err != nil {
			return err
		}
		return srv.ListenAndServe()
	}
}
