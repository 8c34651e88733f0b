package traffic

import "sync/atomic"

// slots is the length of a picker's table: one slot per percent.
const slots = 100

// picker chooses revisions in exact proportion to a split. It lays the
// split out once over 100 slots, in smooth weighted round-robin order
// (nginx's algorithm), and each pick takes the next slot of a shared
// atomic counter. So any 100 consecutive picks of a picker, across all
// goroutines, follow the split exactly, and a small share is spread
// evenly (10 % is every tenth pick) rather than in a burst. A pick is one
// atomic add and an index: no lock, no allocation.
//
// Knative leaves the choice to the ingress (Envoy picks at random per
// request); a deterministic table gives the same proportions without
// statistical error and makes tests exact.
type picker struct {
	// tag is {tag} for a tag's picker, the TagHeader value its requests
	// get (shared, capacity one so an append copies); nil for the default.
	tag       []string
	revisions []string
	slot      [slots]uint8 // index into revisions; a split has at most 100 entries
	n         atomic.Uint64
}

// newPicker lays out split, whose percents are positive and sum to 100.
func newPicker(split []Split) *picker {
	p := &picker{revisions: make([]string, len(split))}
	total := 0
	for i, s := range split {
		p.revisions[i] = s.Revision
		total += s.Percent
	}
	if len(split) < 2 || total <= 0 {
		return p
	}
	// Smooth weighted round-robin: every slot, each revision earns its
	// weight, the richest (lowest index on ties) is chosen and pays the
	// total. Deterministic, and exact over total consecutive slots.
	current := make([]int, len(split))
	for k := range p.slot {
		best := 0
		for i, s := range split {
			current[i] += s.Percent
			if current[i] > current[best] {
				best = i
			}
		}
		current[best] -= total
		p.slot[k] = uint8(best)
	}
	return p
}

func (p *picker) pick() string {
	switch len(p.revisions) {
	case 0:
		return ""
	case 1:
		return p.revisions[0]
	}
	return p.revisions[p.slot[(p.n.Add(1)-1)%slots]]
}
