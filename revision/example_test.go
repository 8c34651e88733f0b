package revision_test

import (
	"fmt"
	"time"

	clocktesting "k8s.io/utils/clock/testing"

	"github.com/zeroscale/zeroscale/revision"
)

func ExampleConfiguration_Update() {
	clk := clocktesting.NewFakeClock(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	cfg, err := revision.NewConfiguration("hello", clk)
	if err != nil {
		panic(err)
	}
	spec := revision.Spec{Image: "ghcr.io/example/hello:1"}

	r, created, _ := cfg.Update(spec, "")
	fmt.Println(r.Name(), created)

	// Port 8080 is the default: the same template, no new revision.
	spec.Port = 8080
	r, created, _ = cfg.Update(spec, "")
	fmt.Println(r.Name(), created)

	spec.Image = "ghcr.io/example/hello:2"
	r, created, _ = cfg.Update(spec, "")
	fmt.Println(r.Name(), created)

	// Bring your own name; it must start with "hello-".
	spec.Env = []revision.EnvVar{{Name: "MODE", Value: "canary"}}
	r, created, _ = cfg.Update(spec, "hello-canary")
	fmt.Println(r.Name(), created, r.Generation())

	_ = cfg.MarkReady("hello-00002")
	_ = cfg.MarkFailed("hello-canary", "readiness probe failed")
	latest, _ := cfg.LatestCreated()
	ready, _ := cfg.LatestReady()
	fmt.Println("latest created:", latest.Name(), "latest ready:", ready.Name())
	// Output:
	// hello-00001 true
	// hello-00001 false
	// hello-00002 true
	// hello-canary true 3
	// latest created: hello-canary latest ready: hello-00002
}

func ExampleParseAnnotations() {
	s, err := revision.ParseAnnotations(map[string]string{
		"autoscaling.knative.dev/min-scale": "1",
		"autoscaling.knative.dev/maxScale":  "10", // legacy spelling
		"autoscaling.knative.dev/target":    "50",
		"autoscaling.knative.dev/window":    "2m",
		"example.com/unrelated":             "ignored",
	})
	fmt.Println(*s.MinScale, *s.MaxScale, *s.Target, *s.Window, err)
	fmt.Println(s.Annotations()["autoscaling.knative.dev/max-scale"])

	_, err = revision.ParseAnnotations(map[string]string{"autoscaling.knative.dev/window": "5s"})
	fmt.Println(err)
	// Output:
	// 1 10 50 2m0s <nil>
	// 10
	// invalid autoscaling.knative.dev/window "5s": must be a Go duration in [6s, 1h0m0s], whole seconds
}

func ExampleParseSchedule() {
	s, err := revision.ParseSchedule("mon-fri 08:00-18:00 Europe/Berlin = 2; Sat 10:00-14:00 UTC = 1")
	if err != nil {
		panic(err)
	}
	fmt.Println(s)
	monday := time.Date(2026, time.December, 7, 7, 50, 0, 0, time.UTC) // 08:50 in Berlin
	fmt.Println("Monday 07:50 UTC:", s.Floor(monday, 0))
	fmt.Println("Monday 06:50 UTC, 15 min lead:", s.Floor(monday.Add(-time.Hour), 15*time.Minute))

	_, err = revision.ParseSchedule("Mon-Fri 08:00-18:00 Europe/Berlin = 2; Sun 25:00-26:00 UTC = 1")
	fmt.Println(err)
	// Output:
	// Mon-Fri 08:00-18:00 Europe/Berlin = 2; Sat 10:00-14:00 UTC = 1
	// Monday 07:50 UTC: 2
	// Monday 06:50 UTC, 15 min lead: 2
	// window 2 ("Sun 25:00-26:00 UTC = 1"): start "25:00": want HH:MM in 00:00–23:59
}
