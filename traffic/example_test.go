package traffic_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// shop returns configuration "shop" with revisions shop-00001 and
// shop-00002, both ready.
func shop() *revision.Configuration {
	c, _ := revision.NewConfiguration("shop", nil)
	for _, image := range []string{"shop:1", "shop:2"} {
		rev, _, _ := c.Update(revision.Spec{Image: image}, "")
		_ = c.MarkReady(rev.Name())
	}
	return c
}

func Example() {
	state := traffic.Configurations{"shop": shop()}
	route, err := traffic.NewRoute(traffic.RouteConfig{Name: "shop", Namespace: "prod", Domain: "example.com"})
	if err != nil {
		panic(err)
	}
	// 90 % stay on the first revision, 10 % try the latest; the latest is
	// also reachable on its own host.
	err = route.Update(traffic.Spec{Traffic: []traffic.Target{
		{RevisionName: "shop-00001", Percent: 90},
		{LatestRevision: true, Percent: 10, Tag: "canary"},
	}}, state)
	if err != nil {
		panic(err)
	}
	counts := map[string]int{}
	for range 1000 {
		rev, _ := route.PickRevision(httptest.NewRequest("GET", "http://shop.prod.example.com/", nil))
		counts[rev]++
	}
	fmt.Println(counts)
	rev, _ := route.PickRevision(httptest.NewRequest("GET", "http://canary-shop.prod.example.com:8080/", nil))
	fmt.Println("canary host:", rev)
	// Output:
	// map[shop-00001:900 shop-00002:100]
	// canary host: shop-00002
}

func ExampleTable() {
	var table traffic.Table // zero value: empty, ready to use
	state := traffic.Configurations{"shop": shop()}
	for _, name := range []string{"shop", "blog"} {
		r, _ := traffic.NewRoute(traffic.RouteConfig{Name: name, Domain: "localhost", DomainTemplate: "{{.Name}}.{{.Domain}}"})
		_ = table.Add(r)
	}
	shopRoute, _ := table.Route("", "shop")
	_ = shopRoute.Update(traffic.Spec{Traffic: []traffic.Target{{LatestRevision: true, Percent: 100}}}, state)

	for _, host := range []string{"shop.localhost:8080", "blog.localhost", "nope.localhost"} {
		rev, err := table.PickRevision(httptest.NewRequest("GET", "http://"+host+"/", nil))
		fmt.Printf("%s: %q %v\n", host, rev, errors.Is(err, traffic.ErrNoRoute))
	}
	// Output:
	// shop.localhost:8080: "shop-00002" false
	// blog.localhost: "" true
	// nope.localhost: "" true
}

// A gradual rollout over 10 seconds, driven by hand on a fake clock (a
// Table's Run does the same on its Clock).
func ExampleRoute_Step() {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := clocktesting.NewFakeClock(start)
	cfg, _ := revision.NewConfiguration("shop", clk)
	v1, _, _ := cfg.Update(revision.Spec{Image: "shop:1"}, "")
	_ = cfg.MarkReady(v1.Name())

	route, _ := traffic.NewRoute(traffic.RouteConfig{Name: "shop", Clock: clk})
	spec := traffic.Spec{
		Traffic:         []traffic.Target{{LatestRevision: true, Percent: 100}},
		RolloutDuration: 10 * time.Second,
	}
	state := traffic.Configurations{"shop": cfg}
	_ = route.Update(spec, state)

	v2, _, _ := cfg.Update(revision.Spec{Image: "shop:2"}, "")
	_ = cfg.MarkReady(v2.Name())
	_ = route.Update(spec, state) // v2 is the latest ready: it starts at 1 %

	for next := route.Step(clk.Now()); ; next = route.Step(clk.Now()) {
		fmt.Println(clk.Since(start), route.Traffic().Default)
		if next.IsZero() {
			break
		}
		clk.SetTime(next)
	}
	// Output:
	// 0s [shop-00001=99% shop-00002=1%]
	// 1s [shop-00001=88% shop-00002=12%]
	// 2s [shop-00001=77% shop-00002=23%]
	// 3s [shop-00001=66% shop-00002=34%]
	// 4s [shop-00001=55% shop-00002=45%]
	// 5s [shop-00001=44% shop-00002=56%]
	// 6s [shop-00001=33% shop-00002=67%]
	// 7s [shop-00001=22% shop-00002=78%]
	// 8s [shop-00001=11% shop-00002=89%]
	// 9s [shop-00002=100%]
}

func ExampleSpec_Validate() {
	err := traffic.Spec{Traffic: []traffic.Target{
		{LatestRevision: true, Percent: 50, Tag: "v2"},
		{RevisionName: "shop-00001", Percent: 120, Tag: "v2"},
	}}.Validate()
	fmt.Println(err)
	// Output:
	// 120 out of range [0, 100]: traffic[1].percent
	// Multiple definitions for "v2": traffic[0].tag, traffic[1].tag
	// Traffic targets sum to 170, want 100: traffic
}

func ExampleResolve() {
	cfg := shop()
	v3, _, _ := cfg.Update(revision.Spec{Image: "shop:3"}, "")
	_ = cfg.MarkFailed(v3.Name(), "crash loop") // latest ready stays shop-00002

	tr, err := traffic.Resolve(traffic.Spec{Traffic: []traffic.Target{
		{LatestRevision: true, Percent: 100},
		{RevisionName: "shop-00001", Tag: "previous"}, // 0 %: reachable by tag only
	}}, "shop", traffic.Configurations{"shop": cfg})
	fmt.Println(tr.Default, tr.Tags, err)

	_, err = traffic.Resolve(traffic.Spec{Traffic: []traffic.Target{
		{RevisionName: v3.Name(), Percent: 100},
	}}, "shop", traffic.Configurations{"shop": cfg})
	fmt.Println(err)
	// Output:
	// [shop-00002=100%] map[previous:[shop-00001=100%]] <nil>
	// traffic: unresolved targets: Revision "shop-00003" is not ready
}
