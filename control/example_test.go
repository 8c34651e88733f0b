package control_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// A host wires a route, a Controller and a backend: the revision starts
// at zero, the first request wakes it, and Shutdown drains and stops
// everything.
func Example() {
	ctx := context.Background()
	conf, _ := revision.NewConfiguration("hello", nil)
	route, _ := traffic.NewRoute(traffic.RouteConfig{Name: "hello"})
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // start at zero
	scaled := make(chan control.Event, 10)

	ctl, err := control.New(control.Options{
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			return fake.New(fake.Options{Drain: drain}) // instances answer their revision's name
		},
		Config:    cfg,
		Activator: activator.Options{Picker: route},
		OnEvent: func(e control.Event) {
			switch e.Kind {
			case control.EventReady:
				_ = conf.MarkReady(e.Revision) // routable from now on
			case control.EventScaled:
				scaled <- e
			}
		},
	})
	if err != nil {
		panic(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go ctl.Run(runCtx)
	defer ctl.Shutdown(ctx)

	rev, _, _ := conf.Update(revision.Spec{Image: "example.com/hello"}, "")
	if err := ctl.Add(ctx, rev); err != nil {
		panic(err)
	}
	_ = route.Update(traffic.Spec{Traffic: []traffic.Target{{LatestRevision: true, Percent: 100}}},
		traffic.Configurations{"hello": conf})
	st, _ := ctl.Status(rev.Name())
	fmt.Println(rev.Name(), "ready:", st.Ready, "serving:", st.Serving)

	front := httptest.NewServer(ctl.Activator())
	defer front.Close()
	resp, err := http.Get(front.URL)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(body))
	e := <-scaled
	fmt.Println(e.Revision, e.Kind, e.From, "→", e.To)
	// Output:
	// hello-00001 ready: true serving: 0
	// 200 OK hello-00001
	// hello-00001 Scaled 0 → 1
}
