// Package knative reads and writes Knative Serving's
// serving.knative.dev/v1 Service manifests (YAML or JSON, one or more
// documents) and turns them into the revision and traffic specs the rest
// of zeroscale runs, and back, so a Knative user's own Service YAML runs
// here unchanged.
//
// Decode is strict, as the Kubernetes API server is: an unknown or
// misspelt field is an error naming its path. SetDefaults applies
// Knative's defaults (container user-container, port 8080, a TCP
// readiness probe, timeoutSeconds 300, traffic 100 % to the latest
// revision). Validate refuses what Knative refuses, in Knative's words
// (more than one port, a port name other than h2c or http1, reserved
// ports and environment variables, masked fields such as lifecycle), and
// what cannot run here, saying why. ToConfig does both and returns a
// Config: a revision.Spec, a traffic.Spec and the metadata; FromConfig
// renders one back. The Service, Revision and Route types also carry
// Knative's status shape (URL, latest created and ready revisions,
// traffic with tag URLs, conditions) for hosts to fill in.
//
// A container with an image runs on a Docker backend; one with only
// command (a local executable) runs as a local process: the manifest
// shape is the same.
package knative
