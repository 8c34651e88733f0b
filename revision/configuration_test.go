package revision

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	clocktesting "k8s.io/utils/clock/testing"
)

func newTestConfiguration(t *testing.T) (*Configuration, *clocktesting.FakeClock) {
	t.Helper()
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c, err := NewConfiguration("hello", clk)
	if err != nil {
		t.Fatal(err)
	}
	return c, clk
}

func image(tag string) Spec { return Spec{Image: "ghcr.io/example/hello:" + tag} }

func mustUpdate(t *testing.T, c *Configuration, spec Spec, name string) (Revision, bool) {
	t.Helper()
	r, created, err := c.Update(spec, name)
	if err != nil {
		t.Fatalf("Update(%q): %v", name, err)
	}
	return r, created
}

func TestNewConfigurationName(t *testing.T) {
	for _, bad := range []string{"", "Hello", "hello_world", "-x", strings.Repeat("a", 64)} {
		if _, err := NewConfiguration(bad, nil); err == nil {
			t.Errorf("NewConfiguration(%q) accepted", bad)
		} else {
			requireFieldError(t, err, "Configuration.Name", bad, "DNS-1035")
		}
	}
	c, err := NewConfiguration("hello", nil)
	if err != nil || c.Name() != "hello" || c.Generation() != 0 {
		t.Fatalf("%v %v", c, err)
	}
	if _, ok := c.LatestCreated(); ok {
		t.Fatal("an empty Configuration has a latest created revision")
	}
	if _, ok := c.LatestReady(); ok {
		t.Fatal("an empty Configuration has a latest ready revision")
	}
}

func TestUpdateStampsOnRealChange(t *testing.T) {
	c, clk := newTestConfiguration(t)
	r1, created := mustUpdate(t, c, image("1"), "")
	if !created || r1.Name() != "hello-00001" || r1.Generation() != 1 || !r1.Created().Equal(clk.Now()) {
		t.Fatalf("first: %v %v gen %d at %v", r1, created, r1.Generation(), r1.Created())
	}
	clk.Step(time.Minute)
	// Same content, spelled differently: no new revision.
	same := image("1")
	same.Port = DefaultPort
	same.Command = []string{}
	if r, created := mustUpdate(t, c, same, ""); created || r.Name() != "hello-00001" {
		t.Fatalf("unchanged spec stamped %v", r)
	}
	r2, created := mustUpdate(t, c, image("2"), "")
	if !created || r2.Name() != "hello-00002" || r2.Generation() != 2 || !r2.Created().Equal(clk.Now()) {
		t.Fatalf("second: %v", r2)
	}
	// A scaling annotation is part of the template too.
	withMin := image("2")
	withMin.Scaling.MinScale = new(1)
	if r3, created := mustUpdate(t, c, withMin, ""); !created || r3.Name() != "hello-00003" {
		t.Fatalf("scaling change: %v %v", r3, created)
	}
	// Going back to an older spec is a change too: a new revision.
	if r4, created := mustUpdate(t, c, image("1"), ""); !created || r4.Name() != "hello-00004" {
		t.Fatalf("revert: %v %v", r4, created)
	}
	if got := names(c.Revisions()); got != "hello-00001 hello-00002 hello-00003 hello-00004" {
		t.Fatalf("Revisions() = %s", got)
	}
	if c.Generation() != 4 {
		t.Fatalf("generation %d", c.Generation())
	}
	if latest, _ := c.LatestCreated(); latest.Name() != "hello-00004" {
		t.Fatalf("latest created %v", latest)
	}
}

func names(rs []Revision) string {
	var s []string
	for _, r := range rs {
		s = append(s, r.Name())
	}
	return strings.Join(s, " ")
}

func TestUpdateNameDigits(t *testing.T) {
	c, _ := newTestConfiguration(t)
	c.generation = 99998
	if r, _ := mustUpdate(t, c, image("1"), ""); r.Name() != "hello-99999" {
		t.Fatalf("got %s", r.Name())
	}
	if r, _ := mustUpdate(t, c, image("2"), ""); r.Name() != "hello-100000" || r.Generation() != 100000 {
		t.Fatalf("got %s gen %d", r.Name(), r.Generation())
	}
}

func TestUpdateLongConfigurationName(t *testing.T) {
	long := "a" + strings.Repeat("b", 61) + "c" // 63 characters
	c, err := NewConfiguration(long, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := mustUpdate(t, c, image("1"), "")
	if len(r.Name()) != 63 || !isDNS1035Label(r.Name()) || !strings.HasSuffix(r.Name(), "-00001") ||
		!strings.HasPrefix(r.Name(), long[:25]) {
		t.Fatalf("shortened name %q (%d)", r.Name(), len(r.Name()))
	}
	if fits := childName("hello", "-00001"); fits != "hello-00001" {
		t.Fatalf("childName shortened a short name: %s", fits)
	}
	r2, _ := mustUpdate(t, c, image("2"), "")
	if r2.Name() == r.Name() || !strings.HasSuffix(r2.Name(), "-00002") {
		t.Fatalf("second shortened name %q", r2.Name())
	}
}

func TestUpdateBringYourOwnName(t *testing.T) {
	c, _ := newTestConfiguration(t)
	blue, created := mustUpdate(t, c, image("1"), "hello-blue")
	if !created || blue.Name() != "hello-blue" || blue.Generation() != 1 {
		t.Fatalf("%v %v", blue, created)
	}
	// Same name and spec: no-op.
	if r, created := mustUpdate(t, c, image("1"), "hello-blue"); created || r.Name() != "hello-blue" {
		t.Fatalf("repeat: %v %v", r, created)
	}
	// Same spec, no name: still the current template, no-op.
	if r, created := mustUpdate(t, c, image("1"), ""); created || r.Name() != "hello-blue" {
		t.Fatalf("unnamed repeat: %v %v", r, created)
	}
	// The template changed but the name did not.
	if _, _, err := c.Update(image("2"), "hello-blue"); !errors.Is(err, ErrNameInUse) || !strings.Contains(err.Error(), "hello-blue") {
		t.Fatalf("reused name: %v", err)
	}
	// A new name with the same spec is a template change in Knative.
	green, created := mustUpdate(t, c, image("1"), "hello-green")
	if !created || green.Generation() != 2 {
		t.Fatalf("renamed: %v %v", green, created)
	}
	// Roll back by name to an existing revision with its spec.
	if r, created := mustUpdate(t, c, image("1"), "hello-blue"); created || r.Name() != "hello-blue" {
		t.Fatalf("roll back: %v %v", r, created)
	}
	if latest, _ := c.LatestCreated(); latest.Name() != "hello-blue" {
		t.Fatalf("latest created after roll back: %v", latest)
	}
	// Generated names continue from the generation.
	if r, _ := mustUpdate(t, c, image("3"), ""); r.Name() != "hello-00003" {
		t.Fatalf("generated after BYO: %v", r)
	}

	for _, bad := range []string{"blue", "hello", "hello-", "hello-Blue", "hellox-1", "other-00001", "hello-" + strings.Repeat("x", 58)} {
		_, _, err := c.Update(image("4"), bad)
		if err == nil {
			t.Errorf("name %q accepted", bad)
			continue
		}
		requireFieldError(t, err, "revision name", bad, `starting with "hello-"`)
	}
	if c.Generation() != 3 {
		t.Fatalf("rejected updates changed the generation: %d", c.Generation())
	}
}

func TestUpdateGeneratedNameTaken(t *testing.T) {
	c, _ := newTestConfiguration(t)
	mustUpdate(t, c, image("1"), "hello-00002")
	if _, _, err := c.Update(image("2"), ""); !errors.Is(err, ErrNameInUse) {
		t.Fatalf("generated name collision: %v", err)
	}
	if c.Generation() != 1 || len(c.Revisions()) != 1 {
		t.Fatal("a failed Update changed the Configuration")
	}
	if r, created := mustUpdate(t, c, image("2"), "hello-two"); !created || r.Generation() != 2 {
		t.Fatalf("%v %v", r, created)
	}
}

func TestUpdateRejectsInvalidSpec(t *testing.T) {
	c, _ := newTestConfiguration(t)
	mustUpdate(t, c, image("1"), "")
	bad := image("2")
	bad.Port = 70000
	_, _, err := c.Update(bad, "")
	if err == nil {
		t.Fatal("accepted")
	}
	requireFieldError(t, err, "Spec.Port", "70000", "[1, 65535]")
	if latest, _ := c.LatestCreated(); latest.Name() != "hello-00001" || c.Generation() != 1 {
		t.Fatal("an invalid spec changed the Configuration")
	}
}

func TestLatestReady(t *testing.T) {
	c, _ := newTestConfiguration(t)
	r1, _ := mustUpdate(t, c, image("1"), "")
	if err := c.MarkReady(r1.Name()); err != nil {
		t.Fatal(err)
	}
	r2, _ := mustUpdate(t, c, image("2"), "")
	latestName := func() string {
		r, ok := c.LatestReady()
		if !ok {
			return ""
		}
		return r.Name()
	}
	if latestName() != "hello-00001" {
		t.Fatalf("before r2 is ready: %s", latestName())
	}
	if err := c.MarkFailed(r2.Name(), "image pull failed"); err != nil {
		t.Fatal(err)
	}
	if latestName() != "hello-00001" {
		t.Fatalf("a failed newer revision moved latest ready: %s", latestName())
	}
	if st, reason, err := c.State(r2.Name()); st != StateFailed || reason != "image pull failed" || err != nil {
		t.Fatalf("State = %v %q %v", st, reason, err)
	}
	r3, _ := mustUpdate(t, c, image("3"), "")
	if st, _, _ := c.State(r3.Name()); st != StateUnknown {
		t.Fatalf("new revision state %v", st)
	}
	if err := c.MarkReady(r3.Name()); err != nil {
		t.Fatal(err)
	}
	// An older revision becoming ready later does not move it back.
	if err := c.MarkReady(r2.Name()); err != nil {
		t.Fatal(err)
	}
	if latestName() != "hello-00003" {
		t.Fatalf("latest ready %s, want hello-00003", latestName())
	}
	if st, reason, _ := c.State(r2.Name()); st != StateReady || reason != "" {
		t.Fatalf("r2 state %v %q after MarkReady", st, reason)
	}
	// A ready revision that later fails stays latest ready.
	if err := c.MarkFailed(r3.Name(), "crash loop"); err != nil {
		t.Fatal(err)
	}
	if latestName() != "hello-00003" {
		t.Fatalf("latest ready %s after failure", latestName())
	}

	for _, err := range []error{c.MarkReady("hello-09999"), c.MarkFailed("nope", "x")} {
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown name: %v", err)
		}
	}
	if _, _, err := c.State("nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("State of unknown: %v", err)
	}
	if StateReady.String() != "Ready" || StateFailed.String() != "Failed" || StateUnknown.String() != "Unknown" {
		t.Error("State.String")
	}
}

func TestLatestReadyFollowsRollBackByName(t *testing.T) {
	c, _ := newTestConfiguration(t)
	mustUpdate(t, c, image("1"), "hello-a")
	mustUpdate(t, c, image("2"), "hello-b")
	for _, n := range []string{"hello-a", "hello-b"} {
		if err := c.MarkReady(n); err != nil {
			t.Fatal(err)
		}
	}
	mustUpdate(t, c, image("1"), "hello-a")
	if r, _ := c.LatestReady(); r.Name() != "hello-a" {
		t.Fatalf("latest ready %s after rolling back to ready hello-a", r.Name())
	}
}

func TestRevisionLookup(t *testing.T) {
	c, _ := newTestConfiguration(t)
	r1, _ := mustUpdate(t, c, image("1"), "")
	got, ok := c.Revision("hello-00001")
	if !ok || got.SpecHash() != r1.SpecHash() {
		t.Fatalf("Revision: %v %v", got, ok)
	}
	if _, ok := c.Revision("hello-00002"); ok {
		t.Fatal("unknown revision found")
	}
	list := c.Revisions()
	list[0] = Revision{}
	if c.Revisions()[0].IsZero() {
		t.Fatal("Revisions() shares its slice")
	}
}

// TestConfigurationConcurrent runs Updates, marks and reads from many
// goroutines; run with -race. Every distinct spec gets exactly one
// revision, and generations are 1..n without gaps.
func TestConfigurationConcurrent(t *testing.T) {
	c, _ := newTestConfiguration(t)
	const workers, specs = 8, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range specs {
				tag := fmt.Sprint((i + w) % specs)
				r, _, err := c.Update(image(tag), "")
				if err != nil {
					t.Error(err)
					return
				}
				if i%3 == 0 {
					if err := c.MarkReady(r.Name()); err != nil {
						t.Error(err)
					}
				}
				c.LatestReady()
				c.LatestCreated()
				c.Revision(r.Name())
				c.Revisions()
				c.Generation()
			}
		})
	}
	wg.Wait()
	revs := c.Revisions()
	for i, r := range revs {
		if r.Generation() != int64(i+1) || r.Name() != fmt.Sprintf("hello-%05d", i+1) {
			t.Fatalf("revision %d: %s gen %d", i, r.Name(), r.Generation())
		}
	}
	// Consecutive Updates with equal specs are no-ops, so every stamped
	// revision differs from its predecessor.
	for i := 1; i < len(revs); i++ {
		if revs[i].SpecHash() == revs[i-1].SpecHash() {
			t.Fatalf("%s repeats its predecessor's spec", revs[i].Name())
		}
	}
	if len(revs) < specs {
		t.Fatalf("only %d revisions for %d specs", len(revs), specs)
	}
}

func TestConfigurationRemove(t *testing.T) {
	c, _ := newTestConfiguration(t)
	var names []string
	for _, cmd := range []string{"a", "b", "c"} {
		r, _, err := c.Update(Spec{Command: []string{cmd}}, "")
		require.NoError(t, err)
		names = append(names, r.Name())
	}
	require.NoError(t, c.MarkReady(names[0]))
	require.NoError(t, c.MarkReady(names[1]))

	require.ErrorIs(t, c.Remove(names[2]), ErrLatestCreated)
	require.ErrorIs(t, c.Remove("hello-09999"), ErrNotFound)

	require.NoError(t, c.Remove(names[1])) // the latest ready
	ready, ok := c.LatestReady()
	require.True(t, ok)
	assert.Equal(t, names[0], ready.Name(), "the newest other ready revision")
	latest, ok := c.LatestCreated()
	require.True(t, ok)
	assert.Equal(t, names[2], latest.Name())
	_, ok = c.Revision(names[1])
	assert.False(t, ok)
	assert.Len(t, c.Revisions(), 2)

	r, created, err := c.Update(Spec{Command: []string{"d"}}, "")
	require.NoError(t, err)
	require.True(t, created)
	assert.Equal(t, "hello-00004", r.Name(), "generations are not reused")

	require.NoError(t, c.Remove(names[0]))
	_, ok = c.LatestReady()
	assert.False(t, ok)
}
