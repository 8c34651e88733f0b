package traffic

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/zeroscale/zeroscale/revision"
)

// state is a RevisionState for tests: latest ready revision by
// configuration ("" = none ready yet) and readiness by revision.
type state struct {
	latest map[string]string
	ready  map[string]bool
}

func (s state) LatestReady(c string) (string, bool) { r, ok := s.latest[c]; return r, ok }
func (s state) IsReady(n string) (bool, bool)       { r, ok := s.ready[n]; return r, ok }

// shopState: configuration shop has shop-1 and shop-2 ready, shop-3
// failed (so shop-2 is latest ready); cart has nothing ready yet.
func shopState() state {
	return state{
		latest: map[string]string{"shop": "shop-2", "cart": ""},
		ready:  map[string]bool{"shop-1": true, "shop-2": true, "shop-3": false},
	}
}

func split(kv ...any) []Split {
	var out []Split
	for i := 0; i < len(kv); i += 2 {
		out = append(out, Split{Revision: kv[i].(string), Percent: kv[i+1].(int)})
	}
	return out
}

func TestResolve(t *testing.T) {
	for _, tc := range []struct {
		name    string
		traffic []Target
		want    Traffic
	}{
		{"latest is latest ready, not the newer failed one",
			[]Target{{LatestRevision: true, Percent: 100}},
			Traffic{Default: split("shop-2", 100)}},
		{"pinned split",
			[]Target{{RevisionName: "shop-1", Percent: 90}, {LatestRevision: true, Percent: 10}},
			Traffic{Default: split("shop-1", 90, "shop-2", 10)}},
		{"merged by revision",
			[]Target{{RevisionName: "shop-2", Percent: 30}, {RevisionName: "shop-1", Percent: 20}, {LatestRevision: true, ConfigurationName: "shop", Percent: 50}},
			Traffic{Default: split("shop-2", 80, "shop-1", 20)}},
		{"0% tagged preview dropped from the default split, 100% on its tag",
			[]Target{{LatestRevision: true, Percent: 100, Tag: "current"}, {RevisionName: "shop-1", Tag: "old"}},
			Traffic{Default: split("shop-2", 100), Tags: map[string][]Split{"current": split("shop-2", 100), "old": split("shop-1", 100)}}},
		{"each tag routes 100% to its target",
			[]Target{{RevisionName: "shop-1", Percent: 40, Tag: "a"}, {RevisionName: "shop-2", Percent: 60, Tag: "b"}},
			Traffic{Default: split("shop-1", 40, "shop-2", 60), Tags: map[string][]Split{"a": split("shop-1", 100), "b": split("shop-2", 100)}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Resolve(Spec{Traffic: tc.traffic}, "shop", shopState())
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestResolveReportsEveryUnresolvedTarget(t *testing.T) {
	_, err := Resolve(Spec{Traffic: []Target{
		{RevisionName: "shop-3", Percent: 10},                          // failed
		{RevisionName: "shop-9", Percent: 10},                          // missing
		{LatestRevision: true, ConfigurationName: "cart", Percent: 10}, // nothing ready
		{LatestRevision: true, ConfigurationName: "gone", Percent: 10}, // missing
		{LatestRevision: true, ConfigurationName: "gone", Percent: 10}, // reported once
		{LatestRevision: true, Percent: 50, Tag: "ok"},                 // fine
	}}, "shop", shopState())
	var te *TargetError
	if !errors.As(err, &te) {
		t.Fatalf("err = %v, want *TargetError", err)
	}
	want := &TargetError{
		Missing:  []TargetRef{{"Revision", "shop-9"}, {"Configuration", "gone"}},
		NotReady: []TargetRef{{"Revision", "shop-3"}, {"Configuration", "cart"}},
	}
	if !reflect.DeepEqual(te, want) {
		t.Errorf("got %+v, want %+v", te, want)
	}
	const msg = `traffic: unresolved targets: Revision "shop-9" referenced in traffic not found; ` +
		`Configuration "gone" referenced in traffic not found; Revision "shop-3" is not ready; ` +
		`Configuration "cart" is waiting for a Revision to become ready`
	if err.Error() != msg {
		t.Errorf("message:\n%s\nwant\n%s", err, msg)
	}
}

func TestResolveRejectsInvalidSpec(t *testing.T) {
	_, err := Resolve(Spec{Traffic: []Target{{RevisionName: "shop-1", Percent: 120}}}, "shop", shopState())
	requireFieldError(t, err, "traffic[0].percent", "120 out of range [0, 100]")
}

func TestResolveRejectsNilState(t *testing.T) {
	valid := Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}}
	if _, err := Resolve(valid, "shop", nil); err == nil || !strings.Contains(err.Error(), "nil RevisionState") {
		t.Errorf("Resolve with a nil state: err = %v", err)
	}
	r := newRoute(t, RouteConfig{Name: "shop"})
	if err := r.Update(valid, nil); err == nil || !strings.Contains(err.Error(), "nil RevisionState") {
		t.Errorf("Update with a nil state: err = %v", err)
	}
}

func TestConfigurationsAdapter(t *testing.T) {
	c, err := revision.NewConfiguration("shop", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i := range 3 {
		rev, _, err := c.Update(revision.Spec{Image: fmt.Sprintf("shop:%d", i)}, "")
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, rev.Name())
	}
	st := Configurations{"shop": c}
	if rev, ok := st.LatestReady("shop"); !ok || rev != "" {
		t.Fatalf("LatestReady before any ready = %q, %v", rev, ok)
	}
	if _, ok := st.LatestReady("cart"); ok {
		t.Fatal("unknown configuration exists")
	}
	for _, step := range []func() error{
		func() error { return c.MarkReady(names[0]) },
		func() error { return c.MarkReady(names[1]) },
		func() error { return c.MarkFailed(names[2], "crash loop") },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if rev, ok := st.LatestReady("shop"); !ok || rev != names[1] {
		t.Errorf("LatestReady = %q, %v; want %s (the newer %s failed)", rev, ok, names[1], names[2])
	}
	for name, want := range map[string][2]bool{names[0]: {true, true}, names[2]: {false, true}, "shop-99999": {false, false}} {
		if ready, exists := st.IsReady(name); ready != want[0] || exists != want[1] {
			t.Errorf("IsReady(%s) = %v, %v; want %v", name, ready, exists, want)
		}
	}
	tr, err := Resolve(Spec{Traffic: []Target{{LatestRevision: true, Percent: 100}}}, "shop", st)
	if err != nil || !reflect.DeepEqual(tr.Default, split(names[1], 100)) {
		t.Errorf("Resolve = %+v, %v", tr, err)
	}
}
