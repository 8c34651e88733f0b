// Package backendtest is the contract test suite every backend.Backend
// engine runs with one call:
//
//	func TestContract(t *testing.T) {
//		backendtest.Run(t, func(t *testing.T, cfg backendtest.Config) backendtest.Harness {
//			b := myengine.New(myengine.Options{Drain: cfg.Drain, DrainTimeout: time.Minute})
//			t.Cleanup(func() { b.Close() })
//			return backendtest.Harness{Backend: b, Spec: specServingTheTestApp}
//		})
//	}
//
// The instances must serve App, a tiny HTTP application whose requests
// can be held open, so the suite can check that scale-down never cuts a
// request in flight. Out-of-process engines run it with ServeApp.
//
// The suite never sleeps to synchronise: it waits on the engine's watch
// channel, or polls what it cannot watch, with a bounded Harness.Timeout,
// and drives engines on a fake clock through Harness.Advance.
package backendtest
