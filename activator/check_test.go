package activator

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// Small assertion helpers: the module's test dependencies stay at the
// standard library.

func noErr(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func mustErr(t testing.TB, err error) {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got nil")
	}
}

func mustTrue(t testing.TB, ok bool, msg ...any) {
	t.Helper()
	if !ok {
		t.Fatal("want true", fmt.Sprint(msg...))
	}
}

func equal(t testing.TB, want, got any, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Errorf("%s want %#v, got %#v", fmt.Sprint(msg...), want, got)
	}
}

func mustEqual(t testing.TB, want, got any, msg ...any) {
	t.Helper()
	if !reflect.DeepEqual(want, got) {
		t.Fatalf("%s want %#v, got %#v", fmt.Sprint(msg...), want, got)
	}
}

func contains(t testing.TB, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("%q does not contain %q", s, sub)
	}
}

func empty(t testing.TB, v any) {
	t.Helper()
	if rv := reflect.ValueOf(v); rv.IsValid() && !rv.IsZero() && !(rv.Kind() == reflect.Slice && rv.Len() == 0) {
		t.Errorf("want empty, got %#v", v)
	}
}

func lessOrEqual(t testing.TB, a, b int64, msg ...any) {
	t.Helper()
	if a > b {
		t.Errorf("%s want %d ≤ %d", fmt.Sprint(msg...), a, b)
	}
}

func errorIs(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("error %v is not %v", err, target)
	}
}

func errorContains(t testing.TB, err error, sub string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), sub) {
		t.Errorf("error %v does not contain %q", err, sub)
	}
}

// eventually polls cond until it holds. Only for events that travel over
// real sockets (a request arriving, a client closing); never a substitute
// for the fake clock.
func eventually(t testing.TB, cond func() bool, msg ...any) {
	t.Helper()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	timeout := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-timeout:
			t.Fatal("condition not met within 10 s: ", fmt.Sprint(msg...))
		}
	}
}
