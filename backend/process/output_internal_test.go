package process

import (
	"slices"
	"strings"
	"testing"
)

func TestTailKeepsLastLines(t *testing.T) {
	tl := newTail(3)
	if got := tl.snapshot(); len(got) != 0 {
		t.Fatalf("empty tail = %q", got)
	}
	for _, l := range []string{"a", "b", "c", "d", "e"} {
		tl.add(l)
	}
	if got, want := tl.snapshot(), []string{"c", "d", "e"}; !slices.Equal(got, want) {
		t.Fatalf("tail = %q, want %q (oldest first)", got, want)
	}
}

func TestReadLines(t *testing.T) {
	long := strings.Repeat("x", maxLineBytes+10)
	in := "one\r\ntwo\n\n" + long + "\nlast without newline"
	var got []string
	readLines(strings.NewReader(in), func(l string) { got = append(got, l) })
	want := []string{"one", "two", "", long[:maxLineBytes], long[maxLineBytes:], "last without newline"}
	if !slices.Equal(got, want) {
		t.Fatalf("lines = %q,\nwant %q", got, want)
	}
}
