package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"math"
	"net"
	"net/http"
	"os"
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
	if err := run(os.Stdout, 4*time.Second); err != nil {
		log.Fatal(err)
	}
}

// run drives the load in two phases of the given length, then waits for
// the revision to scale to zero.
func run(w io.Writer, phase time.Duration) error {
	out := &lockedWriter{w: w} // events arrive on their own goroutine
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
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	cfg.StableWindow, cfg.ScaleToZeroGracePeriod = 6*time.Second, time.Second
	srv, err := zeroscale.New(zeroscale.Options{
		NewBackend: engine,
		Config:     cfg,
		NewDecider: func(autoscaler.ScalingParams, time.Time, int) (autoscaler.Decider, error) {
			return perFour{}, nil
		},
		OnEvent: func(e zeroscale.Event) {
			if e.Kind == zeroscale.EventScaled {
				fmt.Fprintf(out, "%s  %s\n", e.Time.Format("15:04:05.000"), e)
				if e.To == 0 {
					zero <- struct{}{}
				}
			}
		},
	})
	if err != nil {
		return err
	}
	ctx := context.Background()
	defer srv.Shutdown(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	if _, err := srv.Apply(ctx, zeroscale.ServiceSpec{Name: "work", Template: revision.Spec{Image: "example.com/work"}}); err != nil {
		return err
	}

	// A phase of 16 clients (→ 4 instances), then one of 4 (→ 1), then
	// idle.
	for _, clients := range []int{16, 4} {
		fmt.Fprintf(out, "--- %d clients for %v\n", clients, phase)
		var wg sync.WaitGroup
		stop := time.Now().Add(phase)
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
	fmt.Fprintln(out, "--- idle: waiting for scale to zero")
	<-zero
	return nil
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
