package queueproxy_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/stats"
)

func ExampleProxy() {
	// The app instance.
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s, forwarded for %s\n", r.Host, r.Header.Get("X-Forwarded-For"))
	}))
	defer app.Close()

	p, err := queueproxy.New(queueproxy.Options{
		Upstream:             strings.TrimPrefix(app.URL, "http://"),
		Revision:             "hello-00001",
		Instance:             "hello-00001-a",
		ContainerConcurrency: 10,
		ActivatorSecret:      "s3cret",
		// Only our activator routes here and it stops picking the
		// instance before draining it: no quiet period needed.
		DrainQuietPeriod: -1,
		Reporter: stats.ReporterFunc(func(rev string, s stats.Stat) {
			// The autoscaler's collector would record s here.
		}),
	})
	if err != nil {
		panic(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go p.Run(ctx) // stats every second, readiness probing

	// Serve p (and p.MetricsHandler() on another listener); here a
	// request straight to the handler.
	req := httptest.NewRequest(http.MethodGet, "http://hello.example.com/", nil)
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	body, _ := io.ReadAll(rec.Result().Body)
	fmt.Print(rec.Code, " ", string(body))

	// Before stopping the instance: health turns 503, in-flight
	// requests finish.
	if err := p.Drain(ctx); err != nil {
		panic(err)
	}
	health := httptest.NewRecorder()
	p.ServeHTTP(health, httptest.NewRequest(http.MethodGet, queueproxy.HealthPath, nil))
	fmt.Print(health.Code, " ", health.Body.String())
	// Output:
	// 200 hello from hello.example.com, forwarded for 192.0.2.1
	// 503 draining
}
