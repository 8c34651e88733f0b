package revision_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
)

func TestParseSocketActivation(t *testing.T) {
	on, err := revision.ParseSocketActivation(map[string]string{revision.SocketActivationAnnotation: "true"})
	require.NoError(t, err)
	assert.True(t, on)
	on, err = revision.ParseSocketActivation(nil)
	require.NoError(t, err)
	assert.False(t, on)
	_, err = revision.ParseSocketActivation(map[string]string{revision.SocketActivationAnnotation: "yes"})
	require.ErrorContains(t, err, revision.SocketActivationAnnotation)
	require.ErrorContains(t, err, `"true" or "false"`)
}
