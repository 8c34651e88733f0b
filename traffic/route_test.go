package traffic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
)

func newRoute(t testing.TB, cfg RouteConfig) *Route {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "shop"
	}
	if cfg.Namespace == "" {
		cfg.Namespace = "prod"
	}
	r, err := NewRoute(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func update(t testing.TB, r *Route, spec Spec, st RevisionState) {
	t.Helper()
	if err := r.Update(spec, st); err != nil {
		t.Fatal(err)
	}
}

func request(host string, header ...string) *http.Request {
	req := httptest.NewRequest(http.MethodGet, "http://"+host+"/", nil)
	for i := 0; i < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return req
}

// revisionPicker is what Route and Table have in common (and what the
// activator asks of them).
type revisionPicker interface {
	PickRevision(*http.Request) (string, error)
}

func pick(t testing.TB, p revisionPicker, req *http.Request) string {
	t.Helper()
	rev, err := p.PickRevision(req)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

var split9010 = Spec{Traffic: []Target{{RevisionName: "shop-1", Percent: 90}, {LatestRevision: true, Percent: 10}}}

func TestPickSplitIsExact(t *testing.T) {
	r := newRoute(t, RouteConfig{Domain: "example.com"})
	update(t, r, split9010, shopState())
	req := request("shop.prod.example.com")
	const n = 100_000
	counts := map[string]int{}
	lastB := -1
	for i := range n {
		rev := pick(t, r, req)
		counts[rev]++
		if rev == "shop-2" {
			// Smooth layout: the 10 % revision is every tenth pick, not a burst.
			if lastB >= 0 && i-lastB != 10 {
				t.Fatalf("pick %d: shop-2 %d picks after the previous one, want 10", i, i-lastB)
			}
			lastB = i
		}
	}
	if counts["shop-1"] != 90_000 || counts["shop-2"] != 10_000 {
		t.Errorf("counts = %v, want exactly 90000/10000", counts)
	}
}

func TestPickSplitConcurrentWithinBounds(t *testing.T) {
	r := newRoute(t, RouteConfig{})
	update(t, r, split9010, shopState())
	const workers, each = 8, 12_500 // 100,000 picks
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			local := map[string]int{}
			req := request("anything")
			for range each {
				rev, err := r.PickRevision(req)
				if err != nil {
					t.Error(err)
					return
				}
				local[rev]++
			}
			mu.Lock()
			defer mu.Unlock()
			for k, v := range local {
				counts[k] += v
			}
		})
	}
	wg.Wait()
	// One shared counter: 100,000 picks in all are 1000 full laps.
	if counts["shop-1"] != 90_000 || counts["shop-2"] != 10_000 {
		t.Errorf("counts = %v, want exactly 90000/10000", counts)
	}
}

func TestPickerLayout(t *testing.T) {
	for _, s := range [][]Split{
		split("a", 1, "b", 99),
		split("a", 33, "b", 33, "c", 34),
		split("a", 50, "b", 25, "c", 25),
		split("a", 97, "b", 1, "c", 1, "d", 1),
	} {
		p := newPicker(s)
		got := map[string]int{}
		for range 3 * slots {
			got[p.pick()]++
		}
		for _, e := range s {
			if got[e.Revision] != 3*e.Percent {
				t.Errorf("%v: %s picked %d times in 300, want %d", s, e.Revision, got[e.Revision], 3*e.Percent)
			}
		}
	}
	if got := newPicker(nil).pick(); got != "" {
		t.Errorf("empty picker picked %q", got)
	}
}

func TestHosts(t *testing.T) {
	r := newRoute(t, RouteConfig{Domain: "Example.COM"})
	update(t, r, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: "v2"}, {RevisionName: "shop-1", Tag: "old"}}}, shopState())
	if r.Host() != "shop.prod.example.com" {
		t.Errorf("Host = %q", r.Host())
	}
	want := map[string]string{"v2": "v2-shop.prod.example.com", "old": "old-shop.prod.example.com"}
	if got := r.TagHosts(); !reflect.DeepEqual(got, want) {
		t.Errorf("TagHosts = %v, want %v", got, want)
	}

	custom := newRoute(t, RouteConfig{Domain: "localhost", DomainTemplate: "{{.Name}}.{{.Domain}}", TagTemplate: "{{.Name}}--{{.Tag}}"})
	update(t, custom, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: "v2"}}}, shopState())
	if custom.Host() != "shop.localhost" || custom.TagHosts()["v2"] != "shop--v2.localhost" {
		t.Errorf("custom hosts: %q, %v", custom.Host(), custom.TagHosts())
	}

	local := newRoute(t, RouteConfig{Visibility: VisibilityClusterLocal})
	if local.Host() != "shop.prod.svc.cluster.local" || local.Visibility().String() != "cluster-local" ||
		local.Name() != "shop" || local.Namespace() != "prod" {
		t.Errorf("cluster-local route: %q %v %s/%s", local.Host(), local.Visibility(), local.Namespace(), local.Name())
	}
	if len(local.TagHosts()) != 0 || r.Visibility().String() != "external" {
		t.Errorf("TagHosts before Update = %v; visibility %v", local.TagHosts(), r.Visibility())
	}
	if def, err := NewRoute(RouteConfig{Name: "x"}); err != nil || def.Host() != "x.default.example.com" {
		t.Errorf("defaults: %v", err)
	}
}

func TestNewRouteRejects(t *testing.T) {
	for _, tc := range []struct {
		cfg          RouteConfig
		field, inMsg string
	}{
		{RouteConfig{Name: "Shop"}, "RouteConfig.Name", `invalid name "Shop"`},
		{RouteConfig{Name: "shop", Namespace: "a.b"}, "RouteConfig.Namespace", `invalid name "a.b"`},
		{RouteConfig{Name: "shop", Domain: "bad_domain"}, "RouteConfig.Domain", `invalid domain "bad_domain"`},
		{RouteConfig{Name: "shop", Visibility: 7}, "RouteConfig.Visibility", "unknown visibility 7"},
		{RouteConfig{Name: "shop", DomainTemplate: "{{.Name"}, "RouteConfig.DomainTemplate", "invalid template"},
		{RouteConfig{Name: "shop", DomainTemplate: "{{.Nope}}.example.com"}, "RouteConfig.DomainTemplate", "invalid template"},
		{RouteConfig{Name: "shop", DomainTemplate: "{{.Namespace}}.{{.Domain}}"}, "RouteConfig.DomainTemplate", "must depend on every value"},
		{RouteConfig{Name: "shop", TagTemplate: "{{.Name}}"}, "RouteConfig.TagTemplate", "must depend on every value"},
		{RouteConfig{Name: "shop", DomainTemplate: "{{.Name}}_{{.Domain}}"}, "RouteConfig.DomainTemplate", `host "shop_example.com" is not a valid DNS name`},
	} {
		_, err := NewRoute(tc.cfg)
		var fe *revision.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !strings.Contains(err.Error(), tc.inMsg) {
			t.Errorf("NewRoute(%+v) = %v; want %s: …%s…", tc.cfg, err, tc.field, tc.inMsg)
		}
	}
}

func TestUpdateRejectsTooLongTagHost(t *testing.T) {
	r := newRoute(t, RouteConfig{})
	tag := "t" + strings.Repeat("x", 60) // valid tag, but "<tag>-shop" is a 66-character label
	err := r.Update(Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: tag}}}, shopState())
	var fe *revision.FieldError
	if !errors.As(err, &fe) || fe.Field != "traffic[0].tag" || !strings.Contains(fe.Message, "not a valid DNS name") {
		t.Errorf("err = %v", err)
	}
}

func TestTagRouting(t *testing.T) {
	spec := Spec{Traffic: []Target{
		{LatestRevision: true, Percent: 100, Tag: "current"},
		{RevisionName: "shop-1", Percent: 0, Tag: "preview"}, // 0 %: reachable only by tag
	}}
	for _, headerRouting := range []bool{false, true} {
		t.Run(fmt.Sprintf("header routing %v", headerRouting), func(t *testing.T) {
			r := newRoute(t, RouteConfig{TagHeaderRouting: headerRouting})
			update(t, r, spec, shopState())
			for range 200 {
				if got := pick(t, r, request("shop.prod.example.com")); got != "shop-2" {
					t.Fatalf("default host picked %s; the 0 %% preview must get no default traffic", got)
				}
			}
			for host, want := range map[string]string{
				"preview-shop.prod.example.com":       "shop-1",
				"PREVIEW-Shop.prod.example.com:8080":  "shop-1",
				"preview-shop.prod.example.com.":      "shop-1",
				"current-shop.prod.example.com":       "shop-2",
				"current-shop.prod.example.com:31080": "shop-2",
			} {
				if got := pick(t, r, request(host)); got != want {
					t.Errorf("%s: picked %s, want %s", host, got, want)
				}
			}
			want := "shop-2"
			if headerRouting {
				want = "shop-1"
			}
			if got := pick(t, r, request("shop.prod.example.com", TagHeader, "preview")); got != want {
				t.Errorf("tag header: picked %s, want %s", got, want)
			}
			if got := pick(t, r, request("shop.prod.example.com", TagHeader, "unknown")); got != "shop-2" {
				t.Errorf("unknown tag header: picked %s, want the default split", got)
			}
			// A tag host wins over the header.
			if got := pick(t, r, request("current-shop.prod.example.com", TagHeader, "preview")); got != "shop-2" {
				t.Errorf("tag host with header: picked %s", got)
			}
		})
	}
}

func TestNoTrafficYet(t *testing.T) {
	r := newRoute(t, RouteConfig{})
	if _, err := r.PickRevision(request("shop.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("err = %v, want ErrNoRoute", err)
	}
	err := r.Update(Spec{Traffic: []Target{{LatestRevision: true, ConfigurationName: "cart", Percent: 100}}}, shopState())
	var te *TargetError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TargetError", err)
	}
	if _, err := r.PickRevision(request("shop.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("err = %v, want ErrNoRoute", err)
	}
}

func TestFailedUpdateKeepsTraffic(t *testing.T) {
	r := newRoute(t, RouteConfig{})
	update(t, r, split9010, shopState())
	before := r.Traffic()
	if err := r.Update(Spec{Traffic: []Target{{RevisionName: "shop-3", Percent: 100}}}, shopState()); err == nil {
		t.Fatal("Update to a failed revision succeeded")
	}
	if err := r.Update(Spec{Traffic: []Target{{RevisionName: "shop-1", Percent: 100, Tag: "BAD"}}}, shopState()); err == nil {
		t.Fatal("invalid Update succeeded")
	}
	if !r.Traffic().Equal(before) {
		t.Errorf("traffic changed to %+v", r.Traffic())
	}
}

func TestNewerFailedRevisionLeavesTraffic(t *testing.T) {
	st := state{latest: map[string]string{"shop": "shop-1"}, ready: map[string]bool{"shop-1": true}}
	r := newRoute(t, RouteConfig{})
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}}
	update(t, r, spec, st)
	st.ready["shop-2"] = false // stamped, failed: latest ready stays shop-1
	update(t, r, spec, st)
	if got := pick(t, r, request("x")); got != "shop-1" {
		t.Errorf("picked %s", got)
	}
	st.ready["shop-3"] = true
	st.latest["shop"] = "shop-3"
	update(t, r, spec, st)
	if got := pick(t, r, request("x")); got != "shop-3" {
		t.Errorf("picked %s, want shop-3 at once without rollout", got)
	}
}

func TestClusterLocal(t *testing.T) {
	r := newRoute(t, RouteConfig{Visibility: VisibilityClusterLocal})
	update(t, r, split9010, shopState())
	req := request("shop.prod.svc.cluster.local")
	if _, err := r.PickRevision(req); !errors.Is(err, ErrNoRoute) {
		t.Errorf("external request: err = %v, want ErrNoRoute", err)
	}
	if _, err := r.PickRevision(req.WithContext(WithClusterLocal(context.Background()))); err != nil {
		t.Errorf("internal request: %v", err)
	}
	if isClusterLocal(context.Background()) {
		t.Error("plain context is cluster-local")
	}
}

// tableOfOne returns a route with header routing, 90 % on shop-1 and
// 10 % on shop-2 tagged v2, and a table holding it.
func tableOfOne(tb testing.TB) (*Route, *Table) {
	tb.Helper()
	r := newRoute(tb, RouteConfig{TagHeaderRouting: true})
	update(tb, r, Spec{Traffic: []Target{{RevisionName: "shop-1", Percent: 90}, {LatestRevision: true, Percent: 10, Tag: "v2"}}}, shopState())
	tbl := &Table{}
	if err := tbl.Add(r); err != nil {
		tb.Fatal(err)
	}
	return r, tbl
}

func TestPickDoesNotAllocate(t *testing.T) {
	r, tbl := tableOfOne(t)
	for name, req := range map[string]*http.Request{
		"split":      request("shop.prod.example.com"),
		"upper host": request("SHOP.prod.example.com:80"),
		"tag host":   request("v2-shop.prod.example.com"),
		"tag header": request("shop.prod.example.com", TagHeader, "v2"),
	} {
		for pname, p := range map[string]revisionPicker{"route": r, "table": tbl} {
			if a := testing.AllocsPerRun(1000, func() { _, _ = p.PickRevision(req) }); a != 0 {
				t.Errorf("%s %s: %v allocs per pick", pname, name, a)
			}
		}
	}
}

// TestConcurrentPicksWhileSwapping runs picks against updates that swap
// the route's traffic between two splits; run with -race.
func TestConcurrentPicksWhileSwapping(t *testing.T) {
	r := newRoute(t, RouteConfig{TagHeaderRouting: true})
	var tbl Table
	if err := tbl.Add(r); err != nil {
		t.Fatal(err)
	}
	specs := []Spec{
		split9010,
		{Traffic: []Target{{RevisionName: "shop-1", Percent: 50, Tag: "a"}, {LatestRevision: true, Percent: 50, Tag: "b"}}},
	}
	update(t, r, specs[0], shopState())
	done := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			reqs := []*http.Request{request("shop.prod.example.com"), request("a-shop.prod.example.com"),
				request("shop.prod.example.com", TagHeader, "b")}
			for n := 0; ; n++ {
				select {
				case <-done:
					return
				default:
				}
				var p revisionPicker = r
				if (n+i)%2 == 0 {
					p = &tbl
				}
				rev, err := p.PickRevision(reqs[n%len(reqs)])
				if err != nil && !errors.Is(err, ErrNoRoute) { // a tag host may vanish mid-swap
					t.Error(err)
					return
				}
				if err == nil && rev != "shop-1" && rev != "shop-2" {
					t.Errorf("picked %q", rev)
					return
				}
			}
		})
	}
	for i := range 500 {
		update(t, r, specs[i%2], shopState())
		_ = r.Traffic()
		_ = r.TagHosts()
	}
	close(done)
	wg.Wait()
}

func BenchmarkPickRevision(b *testing.B) {
	r, tbl := tableOfOne(b)
	for name, req := range map[string]*http.Request{
		"split": request("shop.prod.example.com"),
		"tag":   request("v2-shop.prod.example.com"),
	} {
		b.Run("route/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = r.PickRevision(req)
			}
		})
		b.Run("table/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, _ = tbl.PickRevision(req)
			}
		})
	}
	b.Run("table/split/parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			req := request("shop.prod.example.com")
			for pb.Next() {
				_, _ = tbl.PickRevision(req)
			}
		})
	})
}

// The app sees how it was reached, as with Knative's ingress: a tag host
// sets the tag; with header routing the default split says so.
func TestPickMarksRequestForTheApp(t *testing.T) {
	r, _ := tableOfOne(t)
	req := request("v2-shop.prod.example.com", DefaultRouteHeader, "true")
	pick(t, r, req)
	require.Equal(t, []string{"v2"}, req.Header[TagHeader])
	require.Empty(t, req.Header[DefaultRouteHeader], "a client's default-route mark kept on a tag route")

	req = request("shop.prod.example.com", TagHeader, "v2")
	pick(t, r, req)
	require.Equal(t, "v2", req.Header.Get(TagHeader))
	require.Empty(t, req.Header[DefaultRouteHeader])

	for _, req := range []*http.Request{request("shop.prod.example.com"), request("shop.prod.example.com", TagHeader, "nope")} {
		pick(t, r, req)
		require.Equal(t, "true", req.Header.Get(DefaultRouteHeader))
	}

	// Without header routing only tag hosts are marked.
	plain := newRoute(t, RouteConfig{})
	update(t, plain, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: "v2"}}}, shopState())
	req = request("shop.prod.example.com")
	pick(t, plain, req)
	require.Empty(t, req.Header)
}
