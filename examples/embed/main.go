package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"time"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// run wires the packages by hand: a traffic.Route picks the revision, a
// control.Controller runs the revisions on the backend (here the
// in-memory fake), and the activator is mounted in the host's own mux.
func run(ctx context.Context, out io.Writer) error {
	var mu sync.Mutex // serialises out
	say := func(format string, a ...any) { mu.Lock(); defer mu.Unlock(); fmt.Fprintf(out, format+"\n", a...) }

	conf, err := revision.NewConfiguration("hello", nil)
	if err != nil {
		return err
	}
	route, err := traffic.NewRoute(traffic.RouteConfig{Name: "hello"})
	if err != nil {
		return err
	}
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // start at zero
	ctl, err := control.New(control.Options{
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			return fake.New(fake.Options{StartDelay: 200 * time.Millisecond, Drain: drain})
		},
		Config:    cfg,
		Activator: activator.Options{Picker: route},
		OnEvent: func(e control.Event) {
			switch e.Kind {
			case control.EventReady: // routable from now on
				_ = conf.MarkReady(e.Revision)
			case control.EventScaled:
				say("%s: %d → %d instances", e.Revision, e.From, e.To)
			}
		},
	})
	if err != nil {
		return err
	}
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go ctl.Run(runCtx)
	defer ctl.Shutdown(context.WithoutCancel(ctx)) // drains and stops every instance

	// Two revisions of one configuration, traffic split 50/50.
	var split []traffic.Target
	for _, color := range []string{"blue", "green"} {
		rev, _, err := conf.Update(revision.Spec{Image: "example.com/hello", Env: []revision.EnvVar{{Name: "COLOR", Value: color}}}, "")
		if err != nil {
			return err
		}
		if err := ctl.Add(ctx, rev); err != nil {
			return err
		}
		split = append(split, traffic.Target{RevisionName: rev.Name(), Percent: 50})
	}
	if err := route.Update(traffic.Spec{Traffic: split}, traffic.Configurations{"hello": conf}); err != nil {
		return err
	}

	// The host program's own mux: its routes, and the app under /hello/.
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/hello/", http.StripPrefix("/hello", ctl.Activator()))
	host := httptest.NewServer(mux)
	defer host.Close()

	for _, path := range []string{"/healthz", "/hello/", "/hello/", "/hello/"} {
		resp, err := http.Get(host.URL + path)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		woke := ""
		if resp.Header.Get(activator.ColdStartHeader) != "" {
			woke = " (woken from zero)"
		}
		say("GET %-8s → %d %q%s", path, resp.StatusCode, body, woke)
	}

	// Retire the second revision: traffic first, then its instances
	// (drained), then the revision.
	split[0].Percent = 100
	if err := route.Update(traffic.Spec{Traffic: split[:1]}, traffic.Configurations{"hello": conf}); err != nil {
		return err
	}
	if err := ctl.Remove(ctx, split[1].RevisionName); err != nil {
		return err
	}
	say("removed %s; running %v", split[1].RevisionName, ctl.Revisions())
	return nil
}
