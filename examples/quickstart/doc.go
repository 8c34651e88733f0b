// Quickstart runs a Server in front of a sample app that scales to zero.
//
//	go run ./examples/quickstart
//	go run ./examples/quickstart -window 6s -grace 1s   # a quick demo
//
// The sample app is this same program: the Server starts it again with
// ZEROSCALE_QUICKSTART_APP=1 for each instance, so nothing else is needed.
package main
