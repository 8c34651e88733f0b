package backendtest_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// An engine runs the whole contract with one call. Engines on a fake
// clock also set Harness.Advance; slow real engines raise Timeout.
func ExampleRun() {
	_ = func(t *testing.T) { // the body of TestContract(t *testing.T)
		backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
			b, err := fake.New(fake.Options{
				Handler: func(revision.Revision) http.Handler { return backendtest.App() },
				Drain:   cfg.Drain,
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { b.Close() })
			return backendtest.Harness{Backend: b, Spec: revision.Spec{Image: "any"}}
		})
	}
}

// The test application holds a request open until it is released.
func ExampleApp() {
	srv := httptest.NewServer(backendtest.App())
	defer srv.Close()

	resp, err := http.Get(srv.URL + backendtest.PathHold + "?key=k")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	line, _ := body.ReadString('\n')
	fmt.Print(resp.StatusCode, " ", line) // in flight now

	rel, err := http.Get(srv.URL + backendtest.PathRelease + "?key=k")
	if err != nil {
		panic(err)
	}
	rel.Body.Close()
	rest, _ := io.ReadAll(body)
	fmt.Print(string(rest))
	// Output:
	// 200 held
	// released
}
