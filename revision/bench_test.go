package revision

import "testing"

// Benchmarks of the per-request-free but per-update (and, for Resolve,
// possibly per-tick) paths. Run: go test -run '^$' -bench . -benchmem ./revision

func BenchmarkParseAnnotations(b *testing.B) {
	anns := fullScaling().Annotations()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseAnnotations(anns); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSpecHash(b *testing.B) {
	s := validSpec()
	s.Scaling = fullScaling()
	b.ReportAllocs()
	for b.Loop() {
		_ = s.Hash()
	}
}

// BenchmarkConfigurationUpdateUnchanged is the common reconcile case: the
// host re-applies the same template.
func BenchmarkConfigurationUpdateUnchanged(b *testing.B) {
	c, err := NewConfiguration("hello", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := validSpec()
	s.Scaling = fullScaling()
	if _, _, err := c.Update(s, ""); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, created, err := c.Update(s, ""); err != nil || created {
			b.Fatal(created, err)
		}
	}
}
