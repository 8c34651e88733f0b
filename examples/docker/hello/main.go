// Command hello is the app examples/docker runs as an image: build it
// static (CGO_ENABLED=0), so it needs nothing but the kernel, and import
// it as a one-file image (see the example's -import flag).
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	rev := os.Getenv("K_REVISION")
	host, _ := os.Hostname() // the container's ID
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "Hello from %s in container %s!\n", rev, host)
	})
	// In a container the app listens on all of its interfaces; the
	// backend publishes the port on the host's 127.0.0.1 only.
	log.Printf("%s listening on :%s", rev, os.Getenv("PORT"))
	log.Fatal(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
