package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// mainEnv makes the test binary run main with the arguments after "--".
const mainEnv = "ZEROSCALE_QUICKSTART_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) == "1" {
		for i, a := range os.Args {
			if a == "--" {
				os.Args = append([]string{os.Args[0]}, os.Args[i+1:]...)
				break
			}
		}
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// The quickstart binds its ports before it prints where to go: with the
// port taken it fails with the reason and prints no URL. Before, it
// printed the URL and the curl lines, then failed.
func TestQuickstartBindsBeforePrinting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	exe, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, "-test.run=^$", "--", "-addr", taken.Addr().String(), "-admin", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), mainEnv+"=1")
	out, err := cmd.CombinedOutput()
	require.Error(t, err, "the quickstart fails on a taken port")
	assert.NotContains(t, string(out), "hello is at", "no URL printed before the bind failed")
	assert.True(t, strings.Contains(string(out), "address already in use"), "the reason is printed: %s", out)
}
