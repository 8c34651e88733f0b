package zeroscale_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/knative"
)

// A Knative Service manifest applied as is: Knative's defaults, status
// in Knative's shape.
func ExampleServer_ApplyKnative() {
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale = true
	srv, err := zeroscale.New(zeroscale.Options{Config: cfg, NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain}) // backend/process by default
	}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer srv.Shutdown(context.Background())

	svcs, err := knative.Decode(strings.NewReader(`
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers:
        - command: ["./hello"]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	ks, err := srv.ApplyKnative(context.Background(), svcs[0])
	if err != nil {
		fmt.Println(err)
		return
	}
	ready, _ := ks.Status.Condition(knative.ConditionReady)
	fmt.Println(ks.Status.LatestCreatedRevisionName, ready.Status, ks.Spec.Template.Spec.Containers[0].Name)

	// Invalid input changes nothing and names the field, in Knative's words.
	svcs[0].Spec.Template.Spec.ContainerConcurrency = new(int64(5000))
	_, err = srv.ApplyKnative(context.Background(), svcs[0])
	fmt.Println(err)
	// Output:
	// hello-00001 True user-container
	// expected 0 <= 5000 <= 1000: spec.template.spec.containerConcurrency
}
