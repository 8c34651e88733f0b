package kubernetes_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/kubernetes"
)

// TestCannotFreeze: the engine does not claim backend.Freezer, so a
// revision with zeroscale.dev/idle-mode: freeze is refused when it is
// applied (control.ErrCannotFreeze), not left to fail at idle.
func TestCannotFreeze(t *testing.T) {
	var b backend.Backend = (*kubernetes.Backend)(nil)
	_, ok := b.(backend.Freezer)
	assert.False(t, ok)
}
