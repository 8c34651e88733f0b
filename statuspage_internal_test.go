package zeroscale

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The ring keeps the last HistoryLength samples, oldest first.
func TestHistoryRingBounded(t *testing.T) {
	var r ring
	for i := range HistoryLength + 10 {
		r.add(sample{instances: i})
	}
	ss := r.samples()
	assert.Len(t, ss, HistoryLength)
	assert.Equal(t, 10, ss[0].instances)
	assert.Equal(t, HistoryLength+9, ss[len(ss)-1].instances)
}
