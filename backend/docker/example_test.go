package docker_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/moby/moby/client"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// A host runs an image-based revision with a queue-proxy in front of
// each container. The image must exist in the engine already (docker
// build, docker load, or docker.ImportBinary).
func Example() {
	ctx := context.Background()
	b, err := docker.New(ctx, docker.Options{
		Identity: "example-host", // stable: a restarted host removes what a killed run left
		Proxy:    docker.QueueProxy(queueproxy.Options{}),
	})
	if err != nil {
		log.Fatal(err) // e.g. the engine is unreachable: backend.ErrTransient
	}
	defer b.Close()
	rev, err := revision.New("hello", "hello-00001", 1, revision.Spec{Image: "hello:1"}, time.Now())
	if err != nil {
		log.Fatal(err)
	}
	if err := b.Deploy(ctx, rev); err != nil {
		log.Fatal(err) // e.g. hello:1 is not in the engine: backend.ErrInvalidArgument
	}
	ch, _ := b.Watch(ctx, rev.Name())
	_ = b.Scale(ctx, rev.Name(), 1)
	for snap := range ch {
		if len(snap) == 1 && snap[0].Serving() {
			fmt.Println("serving at", snap[0].Address)
			break
		}
	}
}

// An unreachable engine is a transient error that says where the client
// looked, so a host can retry or tell its user to start Docker.
func ExampleNew_unreachable() {
	c, err := client.New(client.WithHost("unix:///nonexistent/docker.sock"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	_, err = docker.New(context.Background(), docker.Options{Client: c})
	fmt.Println(errors.Is(err, backend.ErrTransient))
	fmt.Println(strings.Contains(err.Error(), "unreachable at unix:///nonexistent/docker.sock"))
	// Output:
	// true
	// true
}
