// Package edge bounds what one client can hold on a listener that faces
// the outside: open connections per listener and per client address, and
// the time a request body may take to arrive. It is the zeroscale
// Server's front door plumbing, not public API.
package edge
