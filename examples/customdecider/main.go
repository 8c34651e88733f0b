package main

import (
	"context"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// perFour is the policy: a plain value implementing autoscaler.Decider.
type perFour struct{}

func (perFour) Decide(_ time.Time, o autoscaler.Observed) autoscaler.Recommendation {
	return autoscaler.Recommendation{
		DesiredScale: int(math.Ceil(o.Panic / 4)),
		// Negative: keep the activator in the request path.
		ExcessBurstCapacity: -1,
	}
}

func main() {
	engine := func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{
			StartDelay: 150 * time.Millisecond, // a cold start
			Handler: func(revision.Revision) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					time.Sleep(100 * time.Millisecond)
					fmt.Fprintln(w, "ok")
				})
			},
			Drain: drain,
		})
	}

	zero := make(chan struct{}, 1)
	cfg := revision.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	cfg.StableWindow, cfg.ScaleToZeroGracePeriod = 6*time.Second, time.Second
	srv, err := zeroscale.New(zeroscale.Options{
		NewBackend: engine,
		Config:     cfg,
		NewDecider: func(revision.ScalingParams, time.Time, int) (autoscaler.Decider, error) {
			return perFour{}, nil
		},
		OnEvent: func(e zeroscale.Event) {
			if e.Kind == zeroscale.EventScaled {
				fmt.Printf("%s  %s\n", e.Time.Format("15:04:05.000"), e)
				if e.To == 0 {
					zero <- struct{}{}
				}
			}
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	defer srv.Shutdown(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	if _, err := srv.Apply(ctx, zeroscale.ServiceSpec{Name: "work", Template: revision.Spec{Image: "example.com/work"}}); err != nil {
		log.Fatal(err)
	}

	// 4 s of 16 clients (→ 4 instances), then 4 s of 4 (→ 1), then idle.
	for _, clients := range []int{16, 4} {
		fmt.Printf("--- %d clients for 4 s\n", clients)
		var wg sync.WaitGroup
		stop := time.Now().Add(4 * time.Second)
		for range clients {
			wg.Go(func() {
				for time.Now().Before(stop) {
					req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
					req.Host = "work.default.localhost"
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
					}
				}
			})
		}
		wg.Wait()
	}
	fmt.Println("--- idle: waiting for scale to zero")
	<-zero
}
