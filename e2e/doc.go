// Package e2e holds zeroscale's end-to-end tests: a zeroscale.Server with
// the process backend, real processes (the test binary re-executed as
// the app) and real loopback sockets. It has no API; run it with
//
//	go test -race ./e2e -v -run . 2>&1 | grep E2E
//
// to see the measured cold starts, siege totals and parallel starts.
package e2e
