// Package backend defines the Backend interface every instance engine
// implements (local processes, Docker, Kubernetes, the in-memory fake),
// its typed errors, and the Instance it reports. The contract test suite
// every engine runs lives in backend/backendtest.
package backend
