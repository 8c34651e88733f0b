package process_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"time"

	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// The app of these examples is this test binary, re-executed as
// internal/testapp (see TestMain). A real host sets Command to its
// server's binary, which listens on $PORT.
func exampleSpec(mode testapp.Mode) revision.Spec {
	spec, err := testapp.Spec(testapp.Options{Mode: mode})
	if err != nil {
		log.Fatal(err)
	}
	return spec
}

func Example() {
	ctx := context.Background()
	b, err := process.New(process.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	rev, err := revision.New("hello", "hello-00001", 1, exampleSpec(testapp.Serve), time.Now())
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Deploy(ctx, rev); err != nil {
		log.Fatal(err)
	}
	instances, err := b.Watch(ctx, rev.Name())
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Scale(ctx, rev.Name(), 2); err != nil {
		log.Fatal(err)
	}
	for snap := range instances {
		ready := 0
		for _, in := range snap {
			if in.Ready {
				ready++
			}
		}
		if ready < 2 {
			continue
		}
		fmt.Println("ready instances:", ready)
		resp, err := http.Get("http://" + snap[0].Address + "/")
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("GET / → %d %s", resp.StatusCode, body)
		break
	}

	if err := b.Scale(ctx, rev.Name(), 0); err != nil {
		log.Fatal(err)
	}
	for snap := range instances {
		if len(snap) == 0 {
			fmt.Println("scaled to zero")
			break
		}
	}
	// Output:
	// ready instances: 2
	// GET / → 200 ok
	// scaled to zero
}

func ExampleBackend_Status() {
	ctx := context.Background()
	b, err := process.New(process.Options{MinRestartBackoff: time.Minute, MaxRestartBackoff: time.Minute})
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()

	// An app that prints two lines and exits with status 3.
	rev, err := revision.New("broken", "broken-00001", 1, exampleSpec(testapp.Crash), time.Now())
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Deploy(ctx, rev); err != nil {
		log.Fatal(err)
	}
	if err := b.Scale(ctx, rev.Name(), 1); err != nil {
		log.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		st, err := b.Status(ctx, rev.Name())
		if err != nil {
			log.Fatal(err)
		}
		for _, in := range st.CrashLooping() {
			fmt.Println("state:", in.State)
			fmt.Println("exit code:", in.LastExit.Code)
			fmt.Println("reason:", in.LastExit.Reason)
			fmt.Printf("last output: %q\n", in.LastExit.Output)
			return
		}
	}
	// Output:
	// state: BackOff
	// exit code: 3
	// reason: exit status 3
	// last output: ["app starting" "fatal: boom"]
}
