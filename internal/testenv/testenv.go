// Package testenv decides what a test does when an engine it needs (a
// Docker Engine, a Kubernetes control plane) is not there: on a
// developer's machine it skips with the reason, under CI (CI=true) it
// fails, so a CI run can never pass by skipping the tests that matter.
package testenv

import (
	"os"
	"strconv"
	"testing"
)

// InCI reports whether the test runs under CI, as told by CI=true (or
// any value strconv.ParseBool reads as true).
func InCI() bool {
	v, err := strconv.ParseBool(os.Getenv("CI"))
	return err == nil && v
}

// Unavailable ends t because something it needs is missing: t.Skip with
// the reason on a developer's machine, t.Fatal under CI.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("CI=true, so this test must run, but: "+format, args...)
	}
	t.Skipf(format, args...)
}
