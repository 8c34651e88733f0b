package activator_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

// oneRevision routes every request to one revision; a traffic.Route
// does this for real.
type oneRevision string

func (r oneRevision) PickRevision(*http.Request) (string, error) { return string(r), nil }

// A request to a revision at zero is held; the activator reports the
// demand at once; here the "autoscaler" starts an instance on the spot,
// and the held request is served by it.
func Example() {
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s", r.Header.Get(hop.RevisionHeader))
	}))
	defer app.Close()

	var h *activator.Handler
	autoscaler := stats.ReporterFunc(func(rev string, s stats.Stat) {
		if s.AverageConcurrency > 0 {
			fmt.Printf("demand for %s: %.0f\n", rev, s.AverageConcurrency)
			// A host would scale the backend; its watch then reports
			// the new instance ready.
			_ = h.UpdateInstances(rev, []backend.Instance{
				{ID: "i1", Revision: rev, Address: app.Listener.Addr().String(), Ready: true},
			})
		}
	})
	h, err := activator.New(activator.Options{
		Picker:   oneRevision("hello-00001"),
		Secret:   "shared-with-the-queue-proxies",
		Reporter: autoscaler,
	})
	if err != nil {
		panic(err)
	}
	rev, err := revision.New("hello", "hello-00001", 1,
		revision.Spec{Image: "example/hello", ContainerConcurrency: 10}, time.Now())
	if err != nil {
		panic(err)
	}
	if err := h.SetRevision(rev); err != nil {
		panic(err)
	}
	front := httptest.NewServer(h)
	defer front.Close()

	res, err := http.Get(front.URL)
	if err != nil {
		panic(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	fmt.Println(res.StatusCode, string(body))
	fmt.Println("waited for a cold start:", res.Header.Get(activator.ColdStartHeader) != "")
	// Output:
	// demand for hello-00001: 1
	// 200 hello from hello-00001
	// waited for a cold start: true
}

// Requests refused while an app starts (queue full, wait deadline) can
// get a placeholder page instead of the plain 503.
func ExampleRejectFunc() {
	placeholder := activator.RejectFunc(func(w http.ResponseWriter, r *http.Request, err error) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Retry-After", "5")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintln(w, "<p>Starting up, this page will reload.</p>")
	})
	_, err := activator.New(activator.Options{
		Picker:          oneRevision("hello-00001"),
		MaxHeldRequests: 100,
		Reject:          placeholder,
	})
	fmt.Println(err)
	// Output: <nil>
}
