// Customdecider plugs a scaling policy of its own into a Server in place
// of the KPA: one instance per 4 requests in flight, decided on the
// panic window only (fast up, fast down). The instances are the
// in-memory fake backend's, each a real loopback server taking 100 ms
// per request.
//
//	go run ./examples/customdecider
package main
