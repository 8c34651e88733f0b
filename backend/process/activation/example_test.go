package activation_test

import (
	"fmt"
	"log"
	"net/http"
	"os"

	"github.com/zeroscale/zeroscale/backend/process/activation"
)

// An app that runs with socket activation or without: the inherited
// listener when the process backend passes one, else its own on $PORT.
func Example() {
	ln, err := activation.Listen("127.0.0.1:" + os.Getenv("PORT"))
	if err != nil {
		log.Fatal(err)
	}
	defer ln.Close()
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "hello")
	})}
	go func() { _ = srv.Serve(ln) }()
	fmt.Println("serving")
	_ = srv.Close()
	// Output: serving
}
