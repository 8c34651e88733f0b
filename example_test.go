package zeroscale_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/revision"
)

// A Server in front of the in-memory fake backend: a service starts at
// zero instances, its first request wakes it and is answered.
func Example() {
	ctx := context.Background()
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale, cfg.InitialScale = true, 0 // start at zero
	srv, err := zeroscale.New(zeroscale.Options{
		NewBackend: func(drain backend.DrainFunc) (backend.Backend, error) {
			// Each instance answers its revision's name.
			return fake.New(fake.Options{Drain: drain})
		},
		Config: cfg,
	})
	if err != nil {
		panic(err)
	}
	defer srv.Shutdown(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go srv.Serve(ln)

	st, err := srv.Apply(ctx, zeroscale.ServiceSpec{
		Name:     "hello",
		Template: revision.Spec{Image: "example.com/hello"},
	})
	if err != nil {
		panic(err)
	}
	fmt.Println(st.LatestReadyRevision, st.Revisions[0].ActualScale, "instances")

	req, _ := http.NewRequest("GET", "http://"+ln.Addr().String()+"/", nil)
	req.Host = "hello.default.localhost" // what curl sends for http://hello.default.localhost:PORT/
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	fmt.Print(resp.Status, " ", string(body))
	// Output:
	// hello-00001 0 instances
	// 200 OK hello-00001
}
