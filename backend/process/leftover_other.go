//go:build !linux

package process

import (
	"log/slog"
	"os"
	"strconv"
)

// hostEnv marks every instance process with the host that started it.
const hostEnv = "ZEROSCALE_PROCESS_HOST"

// hostID is this process's hostEnv value: its pid (there is no portable
// way to tell a reused pid apart here).
func hostID() string { return strconv.Itoa(os.Getpid()) }

// removeLeftovers needs /proc to find a process by its environment; it
// does nothing on these systems.
func removeLeftovers(*slog.Logger) []int { return nil }
