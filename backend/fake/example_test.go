package fake_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

func Example() {
	ctx := context.Background()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	b, err := fake.New(fake.Options{
		Clock:      clk,
		StartDelay: 2 * time.Second,
		Handler: func(rev revision.Revision) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "hello from %s\n", rev.Name())
			})
		},
	})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	rev, err := revision.New("hello", "hello-00001", 1, revision.Spec{Image: "example.com/hello"}, clk.Now())
	if err != nil {
		panic(err)
	}
	if err := b.Deploy(ctx, rev); err != nil {
		panic(err)
	}
	watch, err := b.Watch(ctx, rev.Name())
	if err != nil {
		panic(err)
	}
	<-watch // the current snapshot: no instances yet
	if err := b.Scale(ctx, rev.Name(), 1); err != nil {
		panic(err)
	}
	snap := <-watch
	fmt.Println(snap[0].ID, "ready:", snap[0].Ready)

	clk.Step(2 * time.Second) // the start delay passes
	snap = <-watch
	fmt.Println(snap[0].ID, "ready:", snap[0].Ready, "started:", snap[0].Started.Format(time.TimeOnly))

	resp, err := http.Get("http://" + snap[0].Address + "/")
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.StatusCode, " ", string(body))
	// Output:
	// hello-00001-i1 ready: false
	// hello-00001-i1 ready: true started: 00:00:00
	// 200 hello from hello-00001
}
