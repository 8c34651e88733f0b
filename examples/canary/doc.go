// Canary splits a service's traffic 90/10 between two revisions and
// gives a third one a tagged preview host that gets no regular traffic.
//
//	go run ./examples/canary
package main
