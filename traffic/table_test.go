package traffic

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	clocktesting "k8s.io/utils/clock/testing"
)

func TestTableDispatchesByHost(t *testing.T) {
	st := state{
		latest: map[string]string{"shop": "shop-2", "cart": "cart-1"},
		ready:  map[string]bool{"shop-1": true, "shop-2": true, "cart-1": true},
	}
	shop := newRoute(t, RouteConfig{Name: "shop"})
	cart := newRoute(t, RouteConfig{Name: "cart"})
	update(t, shop, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}, {RevisionName: "shop-1", Tag: "old"}}}, st)
	update(t, cart, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}}, st)
	var tbl Table
	for _, r := range []*Route{shop, cart} {
		if err := tbl.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	for host, want := range map[string]string{
		"shop.prod.example.com":      "shop-2",
		"Shop.Prod.Example.Com:443":  "shop-2",
		"old-shop.prod.example.com":  "shop-1",
		"cart.prod.example.com:8080": "cart-1",
	} {
		if got := pick(t, &tbl, request(host)); got != want {
			t.Errorf("%s: picked %s, want %s", host, got, want)
		}
	}
	for _, host := range []string{"old-cart.prod.example.com", "shop.example.com", "127.0.0.1:8080", "[::1]:80"} {
		if _, err := tbl.PickRevision(request(host)); !errors.Is(err, ErrNoRoute) {
			t.Errorf("%s: err = %v, want ErrNoRoute", host, err)
		}
	}

	// Dropping the tag drops its host.
	update(t, shop, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: "new"}}}, st)
	if _, err := tbl.PickRevision(request("old-shop.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("removed tag host: err = %v", err)
	}
	if got := pick(t, &tbl, request("new-shop.prod.example.com")); got != "shop-2" {
		t.Errorf("new tag host picked %s", got)
	}

	if r, ok := tbl.Route("prod", "cart"); !ok || r != cart {
		t.Error("Route(prod, cart) not found")
	}
	if got := tbl.Routes(); len(got) != 2 || got[0] != shop || got[1] != cart {
		t.Errorf("Routes = %v", got)
	}
	if !tbl.Remove(cart) || tbl.Remove(cart) {
		t.Error("Remove: want true, then false")
	}
	if _, err := tbl.PickRevision(request("cart.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("removed route: err = %v", err)
	}
	// A removed route's updates no longer reach the table.
	update(t, cart, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: "x"}}}, st)
	if _, err := tbl.PickRevision(request("x-cart.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("removed route's tag: err = %v", err)
	}
}

func TestTableAddConflicts(t *testing.T) {
	var tbl Table
	if err := tbl.Add(nil); err == nil {
		t.Error("adding a nil route succeeded")
	}
	a := newRoute(t, RouteConfig{Name: "shop"})
	if err := tbl.Add(a); err != nil {
		t.Fatal(err)
	}
	if err := tbl.Add(a); err == nil {
		t.Error("adding a route twice succeeded")
	}
	if err := tbl.Add(newRoute(t, RouteConfig{Name: "shop"})); err == nil {
		t.Error("adding a second route with the same host succeeded")
	}
	if _, err := tbl.PickRevision(request("shop.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("route without traffic: err = %v", err)
	}
}

func TestTableOwnHostWinsOverTagHost(t *testing.T) {
	st := state{latest: map[string]string{"shop": "shop-1", "v2-shop": "other-1"}, ready: map[string]bool{"shop-1": true, "other-1": true}}
	var logs strings.Builder
	tbl := Table{Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	shop := newRoute(t, RouteConfig{Name: "shop"})
	other := newRoute(t, RouteConfig{Name: "v2-shop"})
	for _, r := range []*Route{shop, other} {
		if err := tbl.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	update(t, shop, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: "v2"}}}, st)
	update(t, other, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}}, st)
	if got := pick(t, &tbl, request("v2-shop.prod.example.com")); got != "other-1" {
		t.Errorf("picked %s; the route's own host must win", got)
	}
	if want := `host=v2-shop.prod.example.com route=prod/shop tag=v2 owner=prod/v2-shop`; !strings.Contains(logs.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, logs.String())
	}
}

func TestTableClusterLocal(t *testing.T) {
	var tbl Table
	r := newRoute(t, RouteConfig{Visibility: VisibilityClusterLocal})
	update(t, r, split9010, shopState())
	if err := tbl.Add(r); err != nil {
		t.Fatal(err)
	}
	req := request("shop.prod.svc.cluster.local:80")
	if _, err := tbl.PickRevision(req); !errors.Is(err, ErrNoRoute) {
		t.Errorf("external listener: err = %v, want ErrNoRoute", err)
	}
	if _, err := tbl.PickRevision(req.WithContext(WithClusterLocal(req.Context()))); err != nil {
		t.Errorf("internal listener: %v", err)
	}
}

// TestTableRunDrivesRollouts runs the driver on a fake clock; its test
// hook reports each time it arms (or, with no rollout, skips) its timer.
func TestTableRunDrivesRollouts(t *testing.T) {
	clk := clocktesting.NewFakeClock(t0)
	armed := make(chan time.Time)
	tbl := &Table{Clock: clk, armed: func(next time.Time) { armed <- next }}
	st := state{latest: map[string]string{"shop": "shop-1", "cart": "cart-1"},
		ready: map[string]bool{"shop-1": true, "cart-1": true}}
	spec := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}, RolloutDuration: 3 * time.Second}
	shop := newRoute(t, RouteConfig{Name: "shop", Clock: clk})
	cart := newRoute(t, RouteConfig{Name: "cart", Clock: clk})
	for _, r := range []*Route{shop, cart} {
		update(t, r, spec, st)
		if err := tbl.Add(r); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- tbl.Run(ctx) }()
	if next := <-armed; !next.IsZero() {
		t.Fatalf("armed for %v with no rollout", next)
	}

	// shop-2 rolls out over 3 s: 1 %, then 2 steps of round(99/2) = 50 %.
	st.ready["shop-2"] = true
	st.latest["shop"] = "shop-2"
	update(t, shop, spec, st)
	if next := <-armed; next != t0.Add(time.Second) {
		t.Fatalf("armed for %v, want t0+1s", next.Sub(t0))
	}
	// cart's rollout starts half a second later and interleaves.
	clk.Step(500 * time.Millisecond)
	st.ready["cart-2"] = true
	st.latest["cart"] = "cart-2"
	update(t, cart, spec, st)
	if next := <-armed; next != t0.Add(time.Second) {
		t.Fatalf("armed for %v, want t0+1s", next.Sub(t0))
	}
	for _, want := range []struct {
		at, next   time.Duration
		shop, cart []any // requireDefault's revision, percent pairs
	}{
		{1000 * time.Millisecond, 1500 * time.Millisecond, []any{"shop-1", 49, "shop-2", 51}, []any{"cart-1", 99, "cart-2", 1}},
		{1500 * time.Millisecond, 2000 * time.Millisecond, []any{"shop-1", 49, "shop-2", 51}, []any{"cart-1", 49, "cart-2", 51}},
		{2000 * time.Millisecond, 2500 * time.Millisecond, []any{"shop-2", 100}, []any{"cart-1", 49, "cart-2", 51}},
		{2500 * time.Millisecond, 0, []any{"shop-2", 100}, []any{"cart-2", 100}},
	} {
		clk.SetTime(t0.Add(want.at))
		next := <-armed
		if want.next == 0 && !next.IsZero() || want.next != 0 && next != t0.Add(want.next) {
			t.Fatalf("at t0+%v: armed for %v, want t0+%v", want.at, next.Sub(t0), want.next)
		}
		requireDefault(t, shop, want.shop...)
		requireDefault(t, cart, want.cart...)
	}
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

// TestPendingRevision: a route without default traffic sends requests
// for its own host to the pending revision, and stops once it has
// traffic; tag hosts and other hosts are not affected.
func TestPendingRevision(t *testing.T) {
	shop := newRoute(t, RouteConfig{Name: "shop"})
	var tbl Table
	if err := tbl.Add(shop); err != nil {
		t.Fatal(err)
	}
	if _, err := tbl.PickRevision(request("shop.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Fatalf("no traffic, nothing pending: %v, want ErrNoRoute", err)
	}
	shop.SetPending("shop-1")
	if got := pick(t, &tbl, request("shop.prod.example.com")); got != "shop-1" {
		t.Errorf("picked %s, want the pending shop-1", got)
	}
	if _, err := tbl.PickRevision(request("cart.prod.example.com")); !errors.Is(err, ErrNoRoute) {
		t.Errorf("another host got the pending revision: %v", err)
	}
	st := state{latest: map[string]string{"shop": "shop-2"}, ready: map[string]bool{"shop-2": true}}
	update(t, shop, Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}}, st)
	if got := pick(t, &tbl, request("shop.prod.example.com")); got != "shop-2" {
		t.Errorf("picked %s, want the routed shop-2 once there is traffic", got)
	}
	shop.SetPending("")
	if got := pick(t, &tbl, request("shop.prod.example.com")); got != "shop-2" {
		t.Errorf("picked %s after clearing, want shop-2", got)
	}
}
