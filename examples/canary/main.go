package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

const appEnv = "ZEROSCALE_CANARY_APP"

func main() {
	if os.Getenv(appEnv) != "" { // an instance: the app itself
		serveApp()
		return
	}
	if err := run(os.Stdout); err != nil {
		log.Fatal(err)
	}
}

// serveApp is the app each instance runs.
func serveApp() {
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "%s says %s\n", os.Getenv("K_REVISION"), os.Getenv(appEnv))
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:"+os.Getenv("PORT"), nil))
}

func run(out io.Writer) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // every revision starts at zero
	srv, err := zeroscale.New(zeroscale.Options{Config: cfg})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	ctx := context.Background()
	defer srv.Shutdown(ctx)

	apply := func(greeting string, targets []traffic.Target) error {
		_, err := srv.Apply(ctx, zeroscale.ServiceSpec{
			Name:     "hello",
			Template: revision.Spec{Command: []string{exe}, Env: []revision.EnvVar{{Name: appEnv, Value: greeting}}},
			Traffic:  targets,
		})
		return err
	}
	if err := errors.Join(
		apply("hello", nil), // hello-00001 takes 100 %
		apply("bonjour", []traffic.Target{ // hello-00002 is the canary
			{RevisionName: "hello-00001", Percent: 90},
			{RevisionName: "hello-00002", Percent: 10},
		}),
		apply("hallo", []traffic.Target{ // hello-00003: preview only
			{RevisionName: "hello-00001", Percent: 90},
			{RevisionName: "hello-00002", Percent: 10},
			{Tag: "preview", LatestRevision: true, Percent: 0},
		}),
	); err != nil {
		return err
	}

	get := func(host string) (string, error) {
		req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b)), nil
	}
	counts := map[string]int{}
	start := time.Now()
	for range 100 {
		answer, err := get("hello.default.localhost")
		if err != nil {
			return err
		}
		counts[answer]++
	}
	fmt.Fprintf(out, "100 requests to hello.default.localhost (%s, two cold starts included):\n", time.Since(start).Round(time.Millisecond))
	for _, answer := range slices.Sorted(maps.Keys(counts)) {
		fmt.Fprintf(out, "  %3d × %s\n", counts[answer], answer)
	}
	preview, err := get("preview-hello.default.localhost")
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "preview-hello.default.localhost:", preview)

	st, _ := srv.ServiceStatus("hello")
	fmt.Fprintln(out, "traffic:")
	for _, t := range st.Traffic {
		fmt.Fprintf(out, "  %-12s %3d %%  tag=%-8s %s\n", t.Revision, t.Percent, t.Tag, t.URL)
	}
	return nil
}
