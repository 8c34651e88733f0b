package zeroscale_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
)

// TestReservedInstanceInStatus: a service with idle-mode reserve starts
// at zero with its reserved instance, which serves; the status (Go,
// admin JSON, status page) and the events say so.
func TestReservedInstanceInStatus(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	spec := revision.Spec{Image: "x"}
	spec.Scaling.IdleMode = revision.IdleModeReserve
	_, err := f.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "cheap", Template: spec})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		st, err := f.srv.ServiceStatus("cheap")
		return err == nil && len(st.Revisions) == 1 && st.Revisions[0].Reserved == 1
	}, 10*time.Second, time.Millisecond)
	st, err := f.srv.ServiceStatus("cheap")
	require.NoError(t, err)
	assert.Equal(t, 1, st.Revisions[0].ActualScale, "the reserved instance serves")
	assert.Equal(t, 0, st.Revisions[0].AppliedScale, "no standard instance")

	admin := httptest.NewServer(f.srv.AdminHandler())
	defer admin.Close()
	assert.Contains(t, get(t, admin.URL+"/services/cheap"), `"reserved": 1`)
	assert.Contains(t, get(t, admin.URL+"/status?fragment=1"), "(1 reserved)")

	// A request: served at once by the reserved instance, then the
	// standard one it asked for takes over and the reserved one retires.
	code, body := f.get("cheap.default.localhost", "/")
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "cheap-00001\n", body)
	require.Eventually(t, func() bool {
		st, err := f.srv.ServiceStatus("cheap")
		return err == nil && st.Revisions[0].Reserved == 0 && st.Revisions[0].ActualScale == 1
	}, 10*time.Second, time.Millisecond)

	var kinds []string
	require.Eventually(t, func() bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		kinds = kinds[:0]
		for _, e := range f.events {
			if e.Kind == zeroscale.EventReservedStarted || e.Kind == zeroscale.EventReservedRetired {
				kinds = append(kinds, e.String())
			}
		}
		return len(kinds) == 2
	}, 10*time.Second, time.Millisecond)
	assert.Equal(t, []string{
		"cheap: revision cheap-00001 ReservedStarted: reserved instance cheap-00001-i1",
		"cheap: revision cheap-00001 ReservedRetired: reserved instance cheap-00001-i1",
	}, kinds)
}

// TestApplyRefusesReserveOnAnEngineThatCannot: Apply names the
// annotation and changes nothing.
func TestApplyRefusesReserveOnAnEngineThatCannot(t *testing.T) {
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		b, err := fake.New(fake.Options{Drain: drain})
		return struct{ backend.Backend }{b}, err // not a backend.Reserver
	}})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, srv.Shutdown(context.Background())) })
	spec := revision.Spec{Image: "x", Scaling: revision.Scaling{IdleMode: revision.IdleModeReserve}}
	_, err = srv.Apply(t.Context(), zeroscale.ServiceSpec{Name: "hello", Template: spec})
	require.ErrorIs(t, err, control.ErrCannotReserve)
	assert.ErrorContains(t, err, "zeroscale.dev/idle-mode")
	assert.ErrorContains(t, err, "cannot run reserved instances")
	assert.Empty(t, srv.Status())
}
