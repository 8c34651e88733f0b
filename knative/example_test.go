package knative_test

import (
	"fmt"
	"strings"

	"github.com/zeroscale/zeroscale/knative"
)

func ExampleToConfig() {
	const manifest = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/max-scale: "3"
    spec:
      containerConcurrency: 10
      containers:
        - command: ["./hello"]
          env:
            - name: TARGET
              value: World
`
	svcs, err := knative.Decode(strings.NewReader(manifest))
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := knative.ToConfig(svcs[0])
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Name, c.Template.Command, c.Template.Env, c.Template.ContainerConcurrency, *c.Template.Scaling.MaxScale)
	fmt.Printf("%+v\n", c.Traffic.Traffic)
	// Output:
	// hello [./hello] [{TARGET World}] 10 3
	// [{Tag: RevisionName: LatestRevision:true ConfigurationName: Percent:100}]
}

func ExampleDecode_unknownField() {
	const manifest = `
apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    spec:
      containerConcurency: 10
      containers:
        - image: example.com/hello
`
	_, err := knative.Decode(strings.NewReader(manifest))
	fmt.Println(err)
	// Output:
	// unknown field: spec.template.spec.containerConcurency
	// did you mean "containerConcurrency"?
}
