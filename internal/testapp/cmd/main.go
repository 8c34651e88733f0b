// Command testapp is internal/testapp as a program of its own, for
// the Docker tests and benchmarks: built static (CGO_ENABLED=0) and
// imported as an image. Its mode is testapp.Serve unless TESTAPP_MODE
// says otherwise.
package main

import (
	"os"

	"github.com/zeroscale/zeroscale/internal/testapp"
)

func main() { os.Exit(testapp.Run()) }
