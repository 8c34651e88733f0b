package zeroscale_test

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// The knowing differences from Knative are listed in one place, the
// package doc; each the issue named must be there.
func TestDocListsKnativeDifferences(t *testing.T) {
	b, err := os.ReadFile("doc.go")
	require.NoError(t, err)
	doc := string(b)
	_, section, ok := strings.Cut(doc, "# Where zeroscale knowingly differs from Knative")
	require.True(t, ok, "no differences section in doc.go")
	for _, topic := range []string{"JSON", "Hold queue", "Hold deadline", "Retry-After", "cuts the response",
		"queue depth", "quiet period", "ActivatorProbe", "Forwarded"} {
		require.Contains(t, section, topic)
	}
}
