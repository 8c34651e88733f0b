package activator

import (
	"math/rand/v2"
	"net/http"
)

// Candidate is one serving instance of a revision as a Policy
// sees it. Candidates are sorted by Address, as Knative sorts pods by
// ip:port, so packing policies fill the same instances first every time.
type Candidate struct {
	ID      string
	Address string
	// InFlight is the number of requests the activator has sent to the
	// instance that have not finished yet.
	InFlight int
	// Capacity is the instance's container concurrency; 0 means
	// unlimited.
	Capacity int

	// excluded hides the instance from one pick (the retry of a request
	// that failed to connect to it).
	excluded bool
	// local is the instance's in-process queue-proxy
	// (backend.Instance.Handler), nil when it is reached over Address.
	local http.Handler
}

// Available reports whether the instance can take one more request.
func (c Candidate) Available() bool {
	return !c.excluded && (c.Capacity == 0 || c.InFlight < c.Capacity)
}

// Policy picks the instance for the next request of a revision.
//
// Pick returns the index in c of an Available candidate, or -1 when none
// should be used; the activator then holds the request until a slot frees
// or an instance becomes ready. The activator creates one Policy per
// revision and calls Pick with that revision's lock held, so Pick is never
// called concurrently for one Policy, must not block, and must not retain
// c. An index that is out of range or not Available is treated as -1.
type Policy interface {
	Pick(c []Candidate) int
}

// DefaultPolicy returns Knative's policy for a container concurrency:
// power of two choices for 0 (unlimited), first available for 1–3 (packs
// instances, which suits single-threaded apps), round robin above.
func DefaultPolicy(containerConcurrency int) Policy {
	switch {
	case containerConcurrency <= 0:
		return &PowerOfTwoChoices{}
	case containerConcurrency <= 3:
		return FirstAvailable{}
	default:
		return &RoundRobin{}
	}
}

// FirstAvailable picks the first available candidate in address order.
type FirstAvailable struct{}

// Pick implements Policy.
func (FirstAvailable) Pick(c []Candidate) int {
	for i := range c {
		if c[i].Available() {
			return i
		}
	}
	return -1
}

// RoundRobin picks the first available candidate starting after the one
// it picked last, wrapping around; it restarts at the first candidate when
// the list shrank below its position. The zero value is ready to use.
type RoundRobin struct {
	next int
}

// Pick implements Policy.
func (p *RoundRobin) Pick(c []Candidate) int {
	n := len(c)
	if p.next >= n {
		p.next = 0
	}
	for k := range n {
		i := (p.next + k) % n
		if c[i].Available() {
			p.next = i + 1
			return i
		}
	}
	return -1
}

// PowerOfTwoChoices picks two distinct candidates at random and takes the
// one with fewer requests in flight, breaking ties at random (Knative's
// policy for unlimited concurrency). When neither of the two is available
// it falls back to the first available candidate after a random offset.
// The zero value uses math/rand/v2's top-level source.
type PowerOfTwoChoices struct {
	// Rand, when set, is the source of randomness (tests seed it).
	Rand *rand.Rand
}

func (p *PowerOfTwoChoices) intN(n int) int {
	if p.Rand != nil {
		return p.Rand.IntN(n)
	}
	return rand.IntN(n)
}

// Pick implements Policy.
func (p *PowerOfTwoChoices) Pick(c []Candidate) int {
	n := len(c)
	switch n {
	case 0:
		return -1
	case 1:
		if c[0].Available() {
			return 0
		}
		return -1
	}
	a := p.intN(n)
	b := p.intN(n - 1)
	if b >= a {
		b++
	}
	if c[b].InFlight < c[a].InFlight || (c[b].InFlight == c[a].InFlight && p.intN(2) == 1) {
		a, b = b, a
	}
	if c[a].Available() {
		return a
	}
	if c[b].Available() {
		return b
	}
	start := p.intN(n)
	for k := range n {
		if i := (start + k) % n; c[i].Available() {
			return i
		}
	}
	return -1
}
