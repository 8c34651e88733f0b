// Embed mounts zeroscale's activator in a host program's own
// http.ServeMux, wired by hand from the packages: a traffic.Route picks
// the revision, the activator holds requests while the autoscaler's
// Multiscaler scales the backend (here the in-memory fake) from zero.
//
//	go run ./examples/embed
package main
