package control_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
)

// TestBurstAboveTheEngineCap is the regression test of the reliability
// issue's burst: 150 concurrent 1 s requests at containerConcurrency 1
// make the autoscaler want about 215 instances; an engine that runs at
// most 30 used to refuse that Scale outright (ErrInvalidArgument), so
// the revision stayed at zero and every request got 503. Capped, the
// revision runs 20 instances and serves all 150 within the hold
// deadline. It runs on the real clock (the requests take real time).
func TestBurstAboveTheEngineCap(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 6 s")
	}
	const (
		requests = 150
		limit    = 30
		work     = time.Second
	)
	var maxServing atomic.Int64
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	ctl, err := control.New(control.Options{
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			return fake.New(fake.Options{
				MaxInstances: limit,
				Drain:        drain,
				Handler: func(revision.Revision) http.Handler {
					return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
						time.Sleep(work) // the request's work, not a wait for a condition
						fmt.Fprintln(w, "ok")
					})
				},
			})
		},
		Config:    cfg,
		Activator: activator.Options{Picker: pickHeader{}},
		OnEvent: func(e control.Event) {
			if e.Kind == control.EventScaled {
				for m := maxServing.Load(); int64(e.To) > m && !maxServing.CompareAndSwap(m, int64(e.To)); m = maxServing.Load() {
				}
			}
		},
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go ctl.Run(ctx)
	defer func() {
		sctx, scancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer scancel()
		assert.NoError(t, ctl.Shutdown(sctx))
	}()
	front := httptest.NewServer(ctl.Activator())
	defer front.Close()
	rev, err := revision.New("burst", "burst-00001", 1, revision.Spec{Image: "burst", ContainerConcurrency: 1}, time.Now())
	require.NoError(t, err)
	require.NoError(t, ctl.Add(t.Context(), rev))

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: requests}}
	var ok, unavailable, other atomic.Int64
	start := time.Now()
	var wg sync.WaitGroup
	for range requests {
		wg.Go(func() {
			req, _ := http.NewRequest(http.MethodGet, front.URL, nil)
			req.Header.Set("Revision", rev.Name())
			res, err := client.Do(req)
			switch {
			case err != nil:
				other.Add(1)
				return
			case res.StatusCode == http.StatusOK:
				ok.Add(1)
			case res.StatusCode == http.StatusServiceUnavailable:
				unavailable.Add(1)
			default:
				other.Add(1)
			}
			res.Body.Close()
		})
	}
	wg.Wait()
	st, err := ctl.Status(rev.Name())
	require.NoError(t, err)
	t.Logf("burst: %d requests of %v at CC 1, engine cap %d: %d instances reached, %d × 200, %d × 503, %d other, in %v; decision %d, applied %d, cap shown %d",
		requests, work, limit, maxServing.Load(), ok.Load(), unavailable.Load(), other.Load(), time.Since(start).Round(10*time.Millisecond),
		st.Decision.Scale, st.Applied, st.Cap)
	assert.EqualValues(t, limit, maxServing.Load(), "instances reached")
	assert.EqualValues(t, requests, ok.Load(), "all served")
	assert.Zero(t, unavailable.Load(), "503s")
	assert.NoError(t, st.ScaleErr, "never refused")
}
