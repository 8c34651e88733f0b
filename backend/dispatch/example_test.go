package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zeroscale/zeroscale/backend/dispatch"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

func Example() {
	processes, _ := fake.New(fake.Options{}) // backend/process in a real host
	d, _ := dispatch.New(
		dispatch.Engine{Name: "docker", Runs: dispatch.HasImage, Missing: errors.New("no Docker Engine reachable")},
		dispatch.Engine{Name: "process", Runs: dispatch.CommandOnly, Backend: processes},
	)
	defer d.Close()
	for i, spec := range []revision.Spec{{Command: []string{"./hello"}}, {Image: "hello:latest"}} {
		r, _ := revision.New("hello", fmt.Sprintf("hello-%05d", i+1), int64(i+1), spec, time.Now())
		fmt.Println(d.Deploy(context.Background(), r))
	}
	// Output:
	// <nil>
	// revision hello-00002 needs the docker engine, which is not available: no Docker Engine reachable: invalid argument
}
