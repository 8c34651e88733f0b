// Embed mounts zeroscale's activator in a host program's own
// http.ServeMux, wired from the packages as a platform builder would: a
// traffic.Route splits requests over two revisions, and a
// control.Controller runs them on a backend (here the in-memory fake):
// it deploys them, scales them from zero as requests wait, drains their
// instances before they stop, and retires one in order.
//
//	go run ./examples/embed
package main
