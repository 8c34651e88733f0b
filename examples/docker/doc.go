// Docker runs an image-based service that scales to zero on the Docker
// backend: each instance is a container, started on the first request
// and removed when idle. No registry is needed: build the sample app
// static and let the example import it as an image.
//
//	CGO_ENABLED=0 go build -o /tmp/hello ./examples/docker/hello
//	go run ./examples/docker -import /tmp/hello -window 6s -grace 1s -v
//	curl -H 'Host: hello.default.localhost' http://127.0.0.1:8080/
//
// Any image already in the engine whose app listens on $PORT works too:
//
//	go run ./examples/docker -image myapp:1 -port 8080
package main
