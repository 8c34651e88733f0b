// Package kubernetes runs revisions as Kubernetes workloads through the
// real API (k8s.io/client-go) and implements backend.Backend,
// backend.StatusReporter, backend.Reserver and io.Closer. It does not
// implement backend.Freezer (a pod cannot be paused through the API), so
// a host refuses a revision with zeroscale.dev/idle-mode: freeze on it
// when the revision is applied (control.ErrCannotFreeze).
//
// Objects. Deploy creates one Deployment per revision, named after the
// revision, at replicas 0, labelled LabelManagedBy=zeroscale,
// LabelRevision and LabelConfiguration (the selector is LabelRevision)
// and annotated with AnnotationSpecHash. Its pod runs two containers:
//
//   - UserContainer: the revision's Image, Command/Args (which override
//     the image's entrypoint, as in Kubernetes), WorkingDir, Env plus
//     PORT (Spec.Port), K_REVISION, K_CONFIGURATION and K_SERVICE, and
//     its Resources as requests/limits. Its preStop hook is an HTTP GET of
//     the sidecar's /zeroscale/wait-for-drain, which returns once the sidecar
//     drained, so the app gets SIGTERM only after the last request left.
//   - QueueContainer: the queue-proxy sidecar (Options.QueueProxyImage,
//     an image of cmd/queue-proxy) on QueueServingPort (requests, health,
//     stats) and QueueMetricsPort (stats, Prometheus, wait-for-drain),
//     configured by environment variables with Knative's names: the
//     revision's container concurrency, timeouts and readiness probe.
//
// Reserved instances (backend.Reserver, zeroscale.dev/idle-mode
// reserve): Deploy also creates the revision's reserved Deployment,
// "<revision>" + ReservedSuffix, at replicas 0: the same pod template
// with LabelKind "reserved" (on the Deployment, its selector and its
// pods) and the reserved profile as the app container's resources (CPU
// request and limit from zeroscale.dev/reserved-cpu, memory limit from
// reserved-memory). ScaleReserved sets its replicas; its pods carry
// LabelRevision, so they are the revision's instances (Reserved set),
// drained and watched like the others, and Remove deletes both
// Deployments. The standard ReplicaSet's selector (with its
// pod-template-hash) never matches a reserved pod.
//
// As in Knative the user's readiness probe moves to the queue-proxy: the
// queue-proxy probes the app, and kubelet's readiness probe of both
// containers is an HTTP GET of the queue-proxy's health path. The pod's
// terminationGracePeriodSeconds is the revision's request timeout plus
// Options.QuietPeriod. The revision's ports QueueServingPort and
// QueueMetricsPort are reserved.
//
// Deploy is idempotent: the same revision again changes nothing; the same
// name with another spec hash is backend.ErrInvalidArgument (so is a
// Deployment of that name not made by this package); a Deployment still
// being removed is backend.ErrTransient. Options.Customize may add what
// this package does not model (node selectors, tolerations, a service
// account, image pull secrets).
//
// Scale is one merge patch of the Deployment's scale subresource; it does
// not read first (no conflict) and returns at once. On scale-down it
// first sets each running pod's pod-deletion-cost
// (controller.kubernetes.io/pod-deletion-cost) to minus its age in seconds, once per pod.
// What that guarantees: the ReplicaSet controller deletes pods that are
// unscheduled, then pending, then not ready, before ready ones (its own
// rules, which come before the cost); among pods equal on those, the
// youngest by creation time (1 s resolution) goes first. Not guaranteed:
// ties within the same second fall back to Kubernetes' order (shorter
// readiness first, then more restarts, then newer); a cost patch that
// fails is logged and only loses the ordering; a container restart does
// not make its pod younger; during a Deployment rollout (which this
// package never triggers, the template never changes) the Deployment
// controller picks the ReplicaSet first. The PodDeletionCost feature is
// on by default since Kubernetes 1.22.
//
// Watch uses one shared pod informer and one Deployment informer for the
// namespace (selecting LabelManagedBy=zeroscale), not one per revision,
// and publishes whole snapshots (backend.Broadcaster). A pod is an
// instance once it has an IP and both its containers run: Address is
// pod IP:QueueServingPort (dial pod IPs directly, never a ClusterIP: the
// first SYN to a fresh ClusterIP can be blackholed), Ready is the pod's
// Ready condition (or, before kubelet first reports it, the backend's own
// probe of the queue-proxy's health path; see Options.NoEarlyReadiness),
// Draining is its deletionTimestamp, Started is when
// the later of its two containers started. Its ID is the pod name plus
// "-" and the sum of the two containers' restart counts, so a container
// restart is a new instance and an ID is never reused. No Service is
// created.
//
// Drain. When a pod starts terminating (scale-down, Remove, a node
// drain, kubectl delete), the backend publishes it Draining and calls
// Options.Drain (bounded by Options.DrainTimeout, by default the pod's
// grace period). What Kubernetes does meanwhile, and what it guarantees:
// kubelet sends the sidecar SIGTERM and runs the app's preStop hook at
// the same moment the informer sees the deletion; there is no ordering
// between the DrainFunc and kubelet. The sidecar keeps serving through
// its drain: health turns 503 at once, requests in flight and new ones
// are served, and it stops only once nothing has been in flight for
// Options.QuietPeriod; only then does the app's preStop return and the
// app get SIGTERM; kubelet kills whatever is left when the grace period
// ends. So every request sent before the instance was published
// Draining, and any sent up to QuietPeriod after, completes, provided it
// ends within the grace period. The backend keeps a stopped instance
// listed (Draining, not Ready) until its DrainFunc returned, so a
// watcher always sees the DrainFunc end before the instance leaves.
//
// Remove deletes the Deployment with foreground propagation: it stays in
// the API (with a deletion timestamp) until its ReplicaSet and pods are
// gone, so Remove again succeeds meanwhile and Deploy of the name is
// ErrTransient; the watches close once the Deployment, its pods and
// their DrainFunc calls are gone. Close stops the informers and closes
// the watches; it leaves the Deployments in the cluster.
//
// Errors from the API map to the backend's: NotFound is ErrNotDeployed;
// Invalid, Forbidden, BadRequest (requests that cannot succeed as made)
// are ErrInvalidArgument; conflicts, timeouts, 429, 5xx, authentication
// failures and transport errors are ErrTransient.
//
// Configuration: a *rest.Config (Options.Config), a kubeconfig path, or
// in a pod the in-cluster configuration; Options.Namespace (default: the
// kubeconfig context's or the pod's namespace); client QPS and burst;
// the field manager name in managedFields. RBAC the backend needs in its
// namespace: deployments (create, get, list, watch, delete),
// deployments/scale (patch), pods (get, list, watch, patch).
package kubernetes
