package activator

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
)

// An instance that leaves the candidates with requests in flight keeps
// its count: if it comes back it is not handed more than its concurrency.
func TestInFlightSurvivesInstanceFlapping(t *testing.T) {
	e := newEnv(t, 2, nil)
	th := e.h.lookup(rev)
	a := backend.Instance{ID: "a", Revision: rev, Address: "127.0.0.1:1", Ready: true}
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a}))
	var slots []slot
	for range 2 {
		adm, err := th.acquire(context.Background(), acquireReq{arrival: true})
		require.NoError(t, err)
		assert.Equal(t, slot{id: "a", addr: a.Address}, adm.slot)
		slots = append(slots, adm.slot)
	}
	assert.Equal(t, 0, e.load(t).FreeSlots)

	a.Ready = false
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a}))
	assert.Equal(t, Load{InFlight: 2, WaitTimeout: MinWait}, e.load(t))
	a.Ready = true
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{a}))
	assert.Equal(t, 0, e.load(t).FreeSlots)

	th.release(slots[0])
	assert.Equal(t, 1, e.load(t).FreeSlots)
	// A slot on an instance that is gone for good is simply forgotten.
	require.NoError(t, e.h.UpdateInstances(rev, nil))
	th.release(slots[1])
	assert.Equal(t, Load{WaitTimeout: MinWait}, e.load(t))
	assert.Equal(t, 0, len(th.orphans))
}

// Instances are ordered by address, and invalid ones are ignored.
func TestUpdateSortsAndFilters(t *testing.T) {
	e := newEnv(t, 1, nil)
	require.NoError(t, e.h.UpdateInstances(rev, []backend.Instance{
		{ID: "b", Address: "127.0.0.1:2", Ready: true},
		{ID: "a", Address: "127.0.0.1:1", Ready: true},
		{ID: "a", Address: "127.0.0.1:9", Ready: true},             // duplicate ID
		{ID: "x", Revision: "other-00001", Address: "127.0.0.1:3"}, // another revision's
		{ID: "y", Ready: true},                                     // no address
	}))
	th := e.h.lookup(rev)
	th.mu.Lock()
	defer th.mu.Unlock()
	assert.Equal(t, []Candidate{
		{ID: "a", Address: "127.0.0.1:1", Capacity: 1},
		{ID: "b", Address: "127.0.0.1:2", Capacity: 1},
	}, th.cands)
}
