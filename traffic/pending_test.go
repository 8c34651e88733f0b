package traffic

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/revision"
)

func TestPendingRevisionOfConfiguration(t *testing.T) {
	c, err := revision.NewConfiguration("shop", nil)
	require.NoError(t, err)
	require.Equal(t, "", PendingRevision(c), "no revision yet")

	first, _, err := c.Update(revision.Spec{Image: "shop:1"}, "")
	require.NoError(t, err)
	require.Equal(t, first.Name(), PendingRevision(c), "the first revision, not ready yet")

	require.NoError(t, c.MarkFailed(first.Name(), "crashed"))
	require.Equal(t, "", PendingRevision(c), "a failed latest created revision is not waited for")

	second, _, err := c.Update(revision.Spec{Image: "shop:2"}, "")
	require.NoError(t, err)
	require.NoError(t, c.MarkReady(second.Name()))
	third, _, err := c.Update(revision.Spec{Image: "shop:3"}, "")
	require.NoError(t, err)
	require.NotEqual(t, third.Name(), PendingRevision(c))
	require.Equal(t, second.Name(), PendingRevision(c), "the latest ready one wins over a newer one still starting")
}
