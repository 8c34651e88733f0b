package traffic

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
)

// FuzzRoute feeds the outside input a route interprets — a traffic spec
// (two targets and a rollout duration annotation, as a manifest or the
// CLI gives them) and a request's host and tag header — through
// Validate, ParseRolloutDuration, Update and PickRevision. Nothing
// panics; errors are *FieldError; a spec that validates is accepted by
// Update; a pick names a revision the route really sends traffic to.
func FuzzRoute(f *testing.F) {
	f.Add("shop-1", "", 40, false, "", "blue", 60, true, "30s", "shop.default.example.com", "blue")
	f.Add("", "shop", 100, true, "shop-2", "", 0, false, "", "blue-shop.default.example.com:80", "")
	f.Add("shop-1", "", 101, false, "shop-2", "a", -1, false, "1.5s", "SHOP.default.example.com.", "a")
	f.Add("Shop_1", "x/y", 50, true, "shop-3", "a", 50, false, "-1s", "[::1]:8080", "\x00")
	f.Fuzz(func(t *testing.T, rev1, conf1 string, pct1 int, latest1 bool, rev2, tag2 string, pct2 int, latest2 bool,
		rollout, host, tagHeader string) {
		d, rerr := ParseRolloutDuration(map[string]string{RolloutDurationAnnotation: rollout})
		if rerr != nil {
			var fe *revision.FieldError
			require.True(t, errors.As(rerr, &fe), "ParseRolloutDuration error %v is a *revision.FieldError", rerr)
			d = 0
		}
		spec := Spec{Traffic: []Target{
			{RevisionName: rev1, ConfigurationName: conf1, Percent: pct1, LatestRevision: latest1},
			{RevisionName: rev2, Tag: tag2, Percent: pct2, LatestRevision: latest2},
		}, RolloutDuration: d}
		err := spec.Validate()
		if err != nil {
			var fe *revision.FieldError
			require.True(t, errors.As(err, &fe), "Validate error %v is a *revision.FieldError", err)
			return
		}
		r, err := NewRoute(RouteConfig{Name: "shop", TagHeaderRouting: true})
		require.NoError(t, err)
		st := state{
			latest: map[string]string{"shop": "shop-2", "cart": ""},
			ready:  map[string]bool{rev1: true, rev2: true, "shop-2": true},
		}
		if err := r.Update(spec, st); err != nil {
			return // e.g. a configuration with nothing ready: an error, not a panic
		}
		r.Step(time.Now())
		req := &http.Request{Host: host, Header: http.Header{TagHeader: {tagHeader}}}
		got, err := r.PickRevision(req)
		if err != nil {
			require.ErrorIs(t, err, ErrNoRoute)
			return
		}
		routed := map[string]bool{}
		tr := r.Traffic()
		for _, sp := range tr.Default {
			routed[sp.Revision] = true
		}
		for _, splits := range tr.Tags {
			for _, sp := range splits {
				routed[sp.Revision] = true
			}
		}
		require.True(t, routed[got], "picked %q, which the route's traffic %v does not name", got, r.Traffic())
	})
}
