package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

func main() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	engine, err := fake.New(fake.Options{StartDelay: 200 * time.Millisecond})
	if err != nil {
		log.Fatal(err)
	}
	defer engine.Close()

	// The revision, and a route sending it 100 % of what reaches it.
	conf, _ := revision.NewConfiguration("hello", nil)
	rev, _, err := conf.Update(revision.Spec{Image: "example.com/hello"}, "")
	if err != nil {
		log.Fatal(err)
	}
	_ = conf.MarkReady(rev.Name()) // it starts at zero: routable before any instance
	route, _ := traffic.NewRoute(traffic.RouteConfig{Name: "hello"})
	if err := route.Update(traffic.Spec{Traffic: []traffic.Target{{LatestRevision: true, Percent: 100}}},
		traffic.Configurations{"hello": conf}); err != nil {
		log.Fatal(err)
	}

	// Decisions go to the backend; the activator reports demand to the
	// autoscaler's collector (which pokes it out of zero).
	want := make(chan int, 1) // newest scale wins: Publish must not block
	go func() {
		for n := range want {
			_ = engine.Scale(ctx, rev.Name(), n)
		}
	}()
	ms, err := autoscaler.New(autoscaler.Options{Publisher: autoscaler.PublisherFunc(func(d autoscaler.Decision) {
		select {
		case <-want:
		default:
		}
		want <- d.Scale
	})})
	if err != nil {
		log.Fatal(err)
	}
	act, err := activator.New(activator.Options{Picker: route, Reporter: ms.Collector()})
	if err != nil {
		log.Fatal(err)
	}
	go ms.Run(ctx)
	go act.Run(ctx)

	cfg := revision.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	params, err := cfg.Resolve(rev.Spec())
	if err != nil {
		log.Fatal(err)
	}
	if err := engine.Deploy(ctx, rev); err != nil {
		log.Fatal(err)
	}
	if err := act.SetRevision(rev); err != nil {
		log.Fatal(err)
	}
	watch, err := engine.Watch(ctx, rev.Name())
	if err != nil {
		log.Fatal(err)
	}
	go func() { // the backend's instances feed the activator and the autoscaler
		for snap := range watch {
			_ = act.UpdateInstances(rev.Name(), snap)
			_ = ms.SetInstances(rev.Name(), snap)
		}
	}()
	if err := ms.Set(rev.Name(), params, autoscaler.Pushed); err != nil {
		log.Fatal(err)
	}

	// The host program's own mux: its routes, and the app under /hello/.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/hello/", http.StripPrefix("/hello", act))
	host := httptest.NewServer(mux)
	defer host.Close()

	for _, path := range []string{"/healthz", "/hello/", "/hello/"} {
		start := time.Now()
		resp, err := http.Get(host.URL + path)
		if err != nil {
			log.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		fmt.Printf("GET %-8s → %d %q in %s (cold start header %q)\n", path, resp.StatusCode, body,
			time.Since(start).Round(time.Millisecond), resp.Header.Get(activator.ColdStartHeader))
	}
}
