// Package fake is an in-memory backend.Backend for tests and
// simulations. Each instance is a real HTTP server on 127.0.0.1 serving
// the revision's http.Handler, so everything above the backend is tested
// over real sockets; everything else (start delays, drain timeouts, slow
// drains, restarts) runs on an injected clock, deterministically given a
// seed: step a fake clock, call Flush, and the new state is published.
// Faults are injected with FailScale, CrashStarts, Kill, Fail, SetReady
// and SetDrainDelay. It passes backend/backendtest.
package fake
