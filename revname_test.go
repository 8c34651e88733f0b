package zeroscale_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// whoServer is a Server on the fake backend whose apps answer
// "<service>/<revision>", so a test sees whose app serves a host.
func whoServer(t *testing.T) (*zeroscale.Server, func(host string) (int, string)) {
	t.Helper()
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain, Handler: func(r revision.Revision) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				fmt.Fprintf(w, "%s/%s", r.Configuration(), r.Name())
			})
		}})
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	get := func(host string) (int, string) {
		req, err := http.NewRequest("GET", "http://"+host+"/", nil)
		require.NoError(t, err)
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	return srv, get
}

// Service "a" names a revision "a-b-00001"; service "a-b" with the same
// template would stamp the same name. Before, "a-b" was then served by
// "a"'s app and deleting "a-b" removed "a"'s revision while "a" still
// said Ready. Now "a-b" is refused with both names, and deletes touch
// only the deleted service's revisions.
func TestRevisionNamesUniqueAcrossServices(t *testing.T) {
	ctx := context.Background()
	spec := revision.Spec{Image: "x"}

	t.Run("custom name first", func(t *testing.T) {
		srv, get := whoServer(t)
		_, err := srv.Apply(ctx, zeroscale.ServiceSpec{Name: "a", Template: spec, RevisionName: "a-b-00001"})
		require.NoError(t, err)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			code, body := get("a.default.localhost")
			assert.Equal(c, http.StatusOK, code)
			assert.Equal(c, "a/a-b-00001", body)
		}, 10*time.Second, 5*time.Millisecond)

		_, err = srv.Apply(ctx, zeroscale.ServiceSpec{Name: "a-b", Template: spec})
		require.ErrorIs(t, err, revision.ErrNameInUse)
		assert.ErrorContains(t, err, `service "a-b"`)
		assert.ErrorContains(t, err, `"a-b-00001" is taken by service "a"`)
		code, body := get("a-b.default.localhost")
		assert.NotEqual(t, "a/a-b-00001", body, "a-b is not served by a's app (%d)", code)

		err = srv.Delete(ctx, "a-b")
		if err != nil {
			require.ErrorIs(t, err, zeroscale.ErrServiceNotFound)
		}
		code, body = get("a.default.localhost")
		assert.Equal(t, http.StatusOK, code, "a still serves after a-b is deleted")
		assert.Equal(t, "a/a-b-00001", body)
	})

	t.Run("generated name first", func(t *testing.T) {
		srv, get := whoServer(t)
		_, err := srv.Apply(ctx, zeroscale.ServiceSpec{Name: "a-b", Template: spec})
		require.NoError(t, err)
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			_, body := get("a-b.default.localhost")
			assert.Equal(c, "a-b/a-b-00001", body)
		}, 10*time.Second, 5*time.Millisecond)
		_, err = srv.Apply(ctx, zeroscale.ServiceSpec{Name: "a", Template: spec, RevisionName: "a-b-00001"})
		require.ErrorIs(t, err, revision.ErrNameInUse)
		assert.ErrorContains(t, err, `service "a"`)
		assert.ErrorContains(t, err, `"a-b-00001" is taken by service "a-b"`)

		// A service that exists already keeps serving its own revision.
		_, err = srv.Apply(ctx, zeroscale.ServiceSpec{Name: "a", Template: spec})
		require.NoError(t, err)
		_, err = srv.Apply(ctx, zeroscale.ServiceSpec{Name: "a", Template: revision.Spec{Image: "y"}, RevisionName: "a-b-00001"})
		require.ErrorIs(t, err, revision.ErrNameInUse)
		require.NoError(t, srv.Delete(ctx, "a"))
		code, body := get("a-b.default.localhost")
		assert.Equal(t, http.StatusOK, code, "a-b still serves after a is deleted")
		assert.Equal(t, "a-b/a-b-00001", body)
	})
}

// headerServer is a Server on the fake backend whose apps answer the
// forwarding headers they received.
func headerServer(t *testing.T, o zeroscale.Options) *zeroscale.Server {
	t.Helper()
	o.NewBackend = func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain, Handler: func(revision.Revision) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				for _, k := range []string{"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Host"} {
					fmt.Fprintf(w, "%s=%s\n", k, strings.Join(r.Header.Values(k), ","))
				}
			})
		}})
	}
	srv, err := zeroscale.New(o)
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "app", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	return srv
}

// A client's X-Forwarded-* are not believed at the edge: the app sees
// the front door's own values unless the client is a trusted proxy.
// Before, a client could tell the app it came over https for another
// host from another address.
func TestForwardingHeadersTrustedOnlyFromTrustedProxies(t *testing.T) {
	send := func(srv *zeroscale.Server) string {
		var body string
		require.EventuallyWithT(t, func(c *assert.CollectT) {
			req := httptest.NewRequest("GET", "http://app.default.localhost/", nil)
			req.RemoteAddr = "192.0.2.9:4000"
			req.Header.Set("X-Forwarded-For", "203.0.113.7")
			req.Header.Set("X-Forwarded-Proto", "https")
			req.Header.Set("X-Forwarded-Host", "evil.example")
			rec := httptest.NewRecorder()
			srv.Handler().ServeHTTP(rec, req)
			assert.Equal(c, http.StatusOK, rec.Code)
			body = rec.Body.String()
		}, 10*time.Second, 5*time.Millisecond)
		return body
	}
	assert.Equal(t, "X-Forwarded-For=192.0.2.9\nX-Forwarded-Proto=http\nX-Forwarded-Host=app.default.localhost\n",
		send(headerServer(t, zeroscale.Options{})))
	assert.Equal(t, "X-Forwarded-For=203.0.113.7, 192.0.2.9\nX-Forwarded-Proto=https\nX-Forwarded-Host=evil.example\n",
		send(headerServer(t, zeroscale.Options{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})))

	_, err := zeroscale.New(zeroscale.Options{TrustedProxies: []netip.Prefix{{}}})
	assert.ErrorContains(t, err, "Options.TrustedProxies[0]")
}

// Status says requests are waiting only while some are: once the held
// request left, the message no longer claims it. Before, it said so as
// long as the decision that woke the revision stood.
func TestStatusWaitingOnlyWhileHeld(t *testing.T) {
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0
	srv, err := zeroscale.New(zeroscale.Options{Config: cfg, NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
		return fake.New(fake.Options{Drain: drain, StartDelay: time.Hour}) // never ready in this test
	}})
	require.NoError(t, err)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		require.NoError(t, srv.Shutdown(ctx))
	})
	_, err = srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "slow", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)
	active := func() string {
		for _, st := range srv.Status() {
			for _, rs := range st.Revisions {
				for _, c := range rs.Conditions {
					if c.Type == zeroscale.ConditionActive {
						return c.Message
					}
				}
			}
		}
		return ""
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		req := httptest.NewRequest("GET", "http://slow.default.localhost/", nil).WithContext(ctx)
		srv.Handler().ServeHTTP(httptest.NewRecorder(), req)
	}()
	require.Eventually(t, func() bool { return strings.Contains(active(), "1 request is waiting") },
		10*time.Second, 5*time.Millisecond, "while held: %q", active())
	cancel()
	<-done
	require.Eventually(t, func() bool { return active() != "" && !strings.Contains(active(), "waiting") },
		10*time.Second, 5*time.Millisecond, "after the request left: %q", active())
}
