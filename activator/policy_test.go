package activator

import (
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
)

func cands(inFlight ...int) []Candidate {
	c := make([]Candidate, len(inFlight))
	for i, n := range inFlight {
		c[i] = Candidate{ID: string(rune('a' + i)), InFlight: n, Capacity: 2}
	}
	return c
}

func TestDefaultPolicyByConcurrency(t *testing.T) {
	for cc, want := range map[int]Policy{0: &PowerOfTwoChoices{}, 1: FirstAvailable{}, 3: FirstAvailable{}, 4: &RoundRobin{}, 1000: &RoundRobin{}} {
		assert.Equal(t, want, DefaultPolicy(cc), "cc %d", cc)
	}
}

func TestFirstAvailablePacks(t *testing.T) {
	var p FirstAvailable
	c := cands(0, 0, 0)
	var picks []int
	for range 7 {
		i := p.Pick(c)
		picks = append(picks, i)
		if i >= 0 {
			c[i].InFlight++
		}
	}
	assert.Equal(t, []int{0, 0, 1, 1, 2, 2, -1}, picks)
	c[1].InFlight--
	assert.Equal(t, 1, p.Pick(c))
	c[1].excluded = true
	assert.Equal(t, -1, p.Pick(c))
	assert.Equal(t, -1, p.Pick(nil))
}

func TestRoundRobinRotatesSkipsFullAndResets(t *testing.T) {
	p := &RoundRobin{}
	c := cands(0, 2, 0, 0) // b is full
	var picks []int
	for range 5 {
		picks = append(picks, p.Pick(c))
	}
	assert.Equal(t, []int{0, 2, 3, 0, 2}, picks)
	// The list shrank below the position: start again at the first.
	p.next = 3
	assert.Equal(t, 0, p.Pick(c[:2]))
	for i := range c {
		c[i].InFlight = 2
	}
	assert.Equal(t, -1, p.Pick(c))
	assert.Equal(t, -1, p.Pick(nil))
}

func TestPowerOfTwoChoicesPrefersLessLoaded(t *testing.T) {
	p := &PowerOfTwoChoices{Rand: rand.New(rand.NewPCG(1, 2))}
	unlimited := func(inFlight ...int) []Candidate {
		c := cands(inFlight...)
		for i := range c {
			c[i].Capacity = 0
		}
		return c
	}
	// With two candidates both are always compared: the idle one wins.
	c := unlimited(5, 0)
	for range 100 {
		assert.Equal(t, 1, p.Pick(c))
	}
	// One candidate is always picked, whatever its load.
	assert.Equal(t, 0, p.Pick(unlimited(1000)))
	assert.Equal(t, -1, p.Pick(nil))
	// Among many, the most loaded is never picked (it loses every pair),
	// and every other is.
	c = unlimited(1, 1, 1, 9)
	seen := map[int]int{}
	for range 1000 {
		seen[p.Pick(c)]++
	}
	assert.Equal(t, 0, seen[3])
	assert.Equal(t, 3, len(seen))
	// Capacity is respected: only the free candidate can be picked.
	c = cands(2, 2, 1, 2)
	for range 100 {
		assert.Equal(t, 2, p.Pick(c))
	}
	c[2].excluded = true
	assert.Equal(t, -1, p.Pick(c))
}

func TestPickRejectsBadPolicyAnswers(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.Policy = func(int) Policy { return badPolicy(5) } })
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	th := e.h.lookup(rev)
	th.mu.Lock()
	defer th.mu.Unlock()
	assert.Equal(t, -1, th.pickLocked(""))
}

// badPolicy returns a fixed index, valid or not.
type badPolicy int

func (p badPolicy) Pick([]Candidate) int { return int(p) }

func TestNilPolicyMeansDefault(t *testing.T) {
	e := newEnv(t, 1, func(o *Options) { o.Policy = func(int) Policy { return nil } })
	a := newUpstream(t, "a", false)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a.instance(true)}))
	assert.Equal(t, http.StatusOK, wait(t, e.get(t)).code)
}
