package queueproxy

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/internal/hop"
)

func TestCheckIdle(t *testing.T) {
	status := http.StatusOK
	r := newRig(t, http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/idle" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(status)
	}), func(o *Options) { o.ActivatorSecret = "s3cret" })
	ctx := context.Background()

	idle, err := r.proxy.CheckIdle(ctx, "/idle")
	require.NoError(t, err)
	assert.True(t, idle)
	status = http.StatusConflict
	idle, err = r.proxy.CheckIdle(ctx, "/idle")
	require.NoError(t, err)
	assert.False(t, idle)
	status = http.StatusInternalServerError
	_, err = r.proxy.CheckIdle(ctx, "/idle")
	require.ErrorIs(t, err, ErrIdleCheck)
	assert.ErrorContains(t, err, "500")
	_, err = r.proxy.CheckIdle(ctx, "idle")
	require.ErrorIs(t, err, ErrIdleCheck)
	assert.Zero(t, r.proxy.stats.inFlight())

	// Over the wire, from the trusted activator only: the app's verdict,
	// and no request in the stats.
	ask := func(secret string) int {
		req, err := http.NewRequest(http.MethodGet, r.front.URL+"/", nil)
		require.NoError(t, err)
		req.Header.Set(hop.IdleCheckHeader, "/idle")
		if secret != "" {
			req.Header.Set(hop.ActivatorHeader, secret)
		}
		resp, err := r.client.Do(req)
		require.NoError(t, err)
		require.NoError(t, resp.Body.Close())
		return resp.StatusCode
	}
	status = http.StatusConflict
	assert.Equal(t, http.StatusConflict, ask("s3cret"))
	assert.Zero(t, r.proxy.stats.all.arrivals.Load(), "the check is not a request")
	status = http.StatusOK
	assert.Equal(t, http.StatusOK, ask("s3cret"))
	before := r.proxy.stats.all.arrivals.Load()
	assert.Equal(t, http.StatusNotFound, ask("wrong"), "an untrusted caller is proxied, its header dropped")
	assert.Equal(t, before+1, r.proxy.stats.all.arrivals.Load())
}
