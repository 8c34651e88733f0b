package process

import "testing"

// The kernel hands out ports at random and reuses them once closed, so
// 1000 unreserved picks would repeat some; reserved ones never do.
func TestReservePortDistinct(t *testing.T) {
	b := &Backend{ports: make(map[int]struct{})}
	for i := range 1000 {
		before := len(b.ports)
		p, err := b.reservePort()
		if err != nil {
			t.Fatalf("pick %d: %v", i, err)
		}
		if len(b.ports) != before+1 {
			t.Fatalf("pick %d: port %d handed out twice", i, p)
		}
	}
}
