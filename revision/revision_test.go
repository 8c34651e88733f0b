package revision

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestNew(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	spec := validSpec()
	r, err := New("hello", "hello-00001", 1, spec, at)
	if err != nil {
		t.Fatal(err)
	}
	if r.Name() != "hello-00001" || r.Configuration() != "hello" || r.Generation() != 1 || !r.Created().Equal(at) ||
		r.String() != "hello-00001" || r.IsZero() {
		t.Fatalf("accessors: %v %v %v %v", r.Name(), r.Configuration(), r.Generation(), r.Created())
	}
	if !reflect.DeepEqual(r.Spec(), spec.WithDefaults()) {
		t.Fatalf("Spec() = %+v, want the spec with defaults", r.Spec())
	}
	if r.SpecHash() != spec.Hash() {
		t.Fatal("SpecHash differs from Spec.Hash")
	}
	if !(Revision{}).IsZero() {
		t.Fatal("zero Revision is not IsZero")
	}
}

func TestRevisionIsImmutable(t *testing.T) {
	spec := validSpec()
	r, err := New("hello", "hello-00001", 1, spec, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Neither the caller's spec nor a returned copy reaches the revision.
	spec.Command[0] = "evil"
	*spec.Scaling.MinScale = 42
	got := r.Spec()
	got.Args[0] = "evil"
	got.Env[0].Value = "evil"
	*got.Scaling.Window = time.Hour
	if !reflect.DeepEqual(r.Spec(), validSpec().WithDefaults()) {
		t.Fatalf("revision changed through an alias: %+v", r.Spec())
	}
}

func TestNewRejects(t *testing.T) {
	tests := []struct {
		config, name string
		gen          int64
		spec         Spec
		field, value string
	}{
		{"Hello", "hello-00001", 1, validSpec(), "Revision.Configuration", "Hello"},
		{"", "hello-00001", 1, validSpec(), "Revision.Configuration", ""},
		{"hello", "hello_1", 1, validSpec(), "Revision.Name", "hello_1"},
		{"hello", "1hello", 1, validSpec(), "Revision.Name", "1hello"},
		{"hello", "hello-", 1, validSpec(), "Revision.Name", "hello-"},
		{"hello", "h" + strings.Repeat("x", 63), 1, validSpec(), "Revision.Name", "h" + strings.Repeat("x", 63)},
		{"hello", "hello-00001", 0, validSpec(), "Revision.Generation", "0"},
		{"hello", "hello-00001", 1, Spec{}, "Spec.Image", ""},
	}
	for _, tt := range tests {
		_, err := New(tt.config, tt.name, tt.gen, tt.spec, time.Time{})
		if err == nil {
			t.Errorf("New(%q, %q, %d) accepted", tt.config, tt.name, tt.gen)
			continue
		}
		requireFieldError(t, err, tt.field, tt.value, "")
	}
}

func TestIsDNS1035Label(t *testing.T) {
	for s, want := range map[string]bool{
		"a": true, "a-1": true, "abc-def-9": true, strings.Repeat("a", 63): true,
		"": false, strings.Repeat("a", 64): false, "-a": false, "a-": false, "1a": false,
		"A": false, "a.b": false, "a_b": false, "ä": false,
	} {
		if got := isDNS1035Label(s); got != want {
			t.Errorf("isDNS1035Label(%q) = %v", s, got)
		}
	}
}
