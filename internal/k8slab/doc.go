// Package k8slab runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler and KWOK, built
// from the pinned tools module in hack/k8slab (by .ci/run, or by hand:
// hack/k8slab/build.sh DIR) and found through the environment variable
// BinEnv (ZEROSCALE_K8S_BIN).
//
// Every Cluster listens on 127.0.0.1 only, on ports picked for that run,
// keeps its state in a temporary directory, and runs one KWOK-managed
// node whose pod CIDR is a /16 inside 127.0.0.0/8 that no other Cluster
// on the machine uses at the same time (a lock file per /16).
//
// KWOK runs no containers, so the Cluster's Runtime is that node's
// container runtime and kubelet: for every pod bound to the node it
// assigns the pod an IP from the CIDR, starts each container's Image as
// a local process with the container's environment (plus the image's
// Overrides, which stand in for the pod's own network namespace: a
// process binds the pod IP instead of 0.0.0.0 and reaches its sidecars
// at the pod IP instead of localhost), runs the readiness probes and
// writes the pod's status from their results, restarts crashed
// containers with back-off, and, when the pod is deleted, runs the
// preStop hooks, sends SIGTERM, waits out the grace period, sends
// SIGKILL, and removes the pod — in kubelet's order. KWOK's own pod
// stages are not loaded: only its node stages (initialize, lease
// heartbeat) run, so nothing but the Runtime writes pod status.
//
// What this is not: no cgroups, no resource limits, no liveness or
// startup probes, no exec probes or hooks, no volumes, no image pulls,
// no Services (nothing routes ClusterIPs); containers share the host's
// network namespace, hence the Overrides.
package k8slab
