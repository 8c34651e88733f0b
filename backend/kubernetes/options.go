package kubernetes

import (
	"fmt"
	"log/slog"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/zeroscale/zeroscale/backend"
)

// Defaults and limits of Options.
const (
	// DefaultQPS and DefaultBurst replace client-go's 5 and 10, which
	// throttle a host scaling a few dozen revisions at once.
	DefaultQPS   = 50
	DefaultBurst = 100
	// DefaultFieldManager names this backend in managedFields.
	DefaultFieldManager = "zeroscale"
	// DefaultQuietPeriod is how long the queue-proxy keeps serving after
	// its pod started terminating and its last request ended: Knative's
	// 30 s, the time endpoint removal takes to reach every load balancer.
	DefaultQuietPeriod = 30 * time.Second
	// DefaultSyncTimeout bounds the wait for the first list of pods and
	// Deployments in Watch and Status.
	DefaultSyncTimeout = 30 * time.Second
	// MaxQuietPeriod bounds QuietPeriod.
	MaxQuietPeriod = time.Hour
)

// Ports of the queue-proxy sidecar (Knative's numbers) and the user
// container's name; a revision may not use the sidecar's ports.
const (
	QueueServingPort = 8012
	QueueMetricsPort = 9090
	UserContainer    = "user-container"
	QueueContainer   = "queue-proxy"
)

// Options configure a Backend. QueueProxyImage is required; everything
// else has a working default.
type Options struct {
	// Config is the API client configuration. nil means Kubeconfig when
	// set, else the in-cluster configuration when running in a pod, else
	// the usual kubeconfig rules ($KUBECONFIG, ~/.kube/config).
	Config *rest.Config
	// Kubeconfig is a kubeconfig file, used when Config is nil.
	Kubeconfig string
	// Context is the kubeconfig context; "" means its current context.
	Context string
	// Namespace holds the revisions' Deployments. "" means the
	// kubeconfig context's namespace, in a pod the pod's own namespace,
	// else "default".
	Namespace string
	// QPS and Burst rate-limit this backend's API calls; 0 means
	// DefaultQPS and DefaultBurst.
	QPS   float32
	Burst int
	// FieldManager names this backend in the objects' managedFields;
	// "" means DefaultFieldManager.
	FieldManager string

	// QueueProxyImage is the image of the queue-proxy sidecar: an image
	// of this module's cmd/queue-proxy whose entrypoint is the binary.
	// Required.
	QueueProxyImage string
	// QueueProxyEnv is added to the sidecar's environment after the
	// backend's own variables, e.g. ACTIVATOR_SECRET from a Secret.
	QueueProxyEnv []corev1.EnvVar
	// QuietPeriod is how long the sidecar keeps serving after its pod
	// started terminating and its last request ended (see
	// DefaultQuietPeriod, used when 0); at most MaxQuietPeriod. Each
	// pod's terminationGracePeriodSeconds is the revision's request
	// timeout plus this.
	QuietPeriod time.Duration

	// Drain is called when a pod of a revision starts terminating, after
	// the instance was published Draining; see the package doc for what
	// Kubernetes does meanwhile. nil means no hook.
	Drain backend.DrainFunc
	// DrainTimeout bounds one Drain call. 0 means the pod's grace
	// period (the revision's request timeout plus QuietPeriod): after
	// that kubelet has killed the pod anyway.
	DrainTimeout time.Duration

	// NoEarlyReadiness turns off the backend's own probe of new pods:
	// an instance is then Ready only once kubelet reports its pod Ready,
	// which takes up to a probe period (at least 1 s) after the app
	// listens. With it on (the default) the backend polls a new
	// instance's queue-proxy health path every 50 ms (as Knative's
	// activator probes new pods) and reports it Ready on the first 200
	// (re-checking every second) until kubelet reports the pod Ready;
	// from then on kubelet decides.
	NoEarlyReadiness bool

	// Customize, when set, is called with every Deployment before it is
	// created, to add what this package does not model (node selectors,
	// tolerations, a service account, image pull secrets, sidecars). It
	// must not change the name, namespace, labels or selector.
	Customize func(*appsv1.Deployment)
	// SyncTimeout bounds the wait for the informers' first list (see
	// DefaultSyncTimeout, used when 0).
	SyncTimeout time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
}

// withDefaults validates o and fills in its defaults; it also resolves
// the client configuration and namespace.
func (o Options) withDefaults() (Options, *rest.Config, error) {
	if o.QueueProxyImage == "" {
		return o, nil, fmt.Errorf("kubernetes: Options.QueueProxyImage is required: an image of cmd/queue-proxy")
	}
	switch {
	case o.QPS < 0:
		return o, nil, fmt.Errorf("kubernetes: Options.QPS %v: must be ≥ 0 (0 = %d)", o.QPS, DefaultQPS)
	case o.Burst < 0:
		return o, nil, fmt.Errorf("kubernetes: Options.Burst %d: must be ≥ 0 (0 = %d)", o.Burst, DefaultBurst)
	case o.QuietPeriod < 0 || o.QuietPeriod > MaxQuietPeriod:
		return o, nil, fmt.Errorf("kubernetes: Options.QuietPeriod %v: must be in [0, %v] (0 = %v)", o.QuietPeriod, MaxQuietPeriod, DefaultQuietPeriod)
	case o.DrainTimeout < 0:
		return o, nil, fmt.Errorf("kubernetes: Options.DrainTimeout %v: must be ≥ 0 (0 = the pod's grace period)", o.DrainTimeout)
	case o.SyncTimeout < 0:
		return o, nil, fmt.Errorf("kubernetes: Options.SyncTimeout %v: must be ≥ 0 (0 = %v)", o.SyncTimeout, DefaultSyncTimeout)
	}
	if o.QPS == 0 {
		o.QPS = DefaultQPS
	}
	if o.Burst == 0 {
		o.Burst = DefaultBurst
	}
	if o.FieldManager == "" {
		o.FieldManager = DefaultFieldManager
	}
	if o.QuietPeriod == 0 {
		o.QuietPeriod = DefaultQuietPeriod
	}
	if o.SyncTimeout == 0 {
		o.SyncTimeout = DefaultSyncTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	cfg, ns, err := o.restConfig()
	if err != nil {
		return o, nil, err
	}
	if o.Namespace == "" {
		o.Namespace = ns
	}
	cfg.QPS, cfg.Burst = o.QPS, o.Burst
	if cfg.UserAgent == "" {
		cfg.UserAgent = "zeroscale"
	}
	return o, cfg, nil
}

// restConfig returns a copy of the configuration to use and the
// namespace it implies.
func (o Options) restConfig() (*rest.Config, string, error) {
	if o.Config != nil {
		return rest.CopyConfig(o.Config), "default", nil
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if o.Kubeconfig != "" {
		rules = &clientcmd.ClientConfigLoadingRules{ExplicitPath: o.Kubeconfig}
	}
	// The deferred loader falls back to the in-cluster configuration
	// (and the pod's namespace) when no kubeconfig is found.
	cc := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{CurrentContext: o.Context})
	cfg, err := cc.ClientConfig()
	if err != nil {
		return nil, "", fmt.Errorf("kubernetes: client configuration (Options.Config, Options.Kubeconfig %q, in-cluster, $KUBECONFIG, ~/.kube/config): %w", o.Kubeconfig, err)
	}
	ns, _, err := cc.Namespace()
	if err != nil || ns == "" {
		ns = "default"
	}
	return cfg, ns, nil
}
