package kubernetes

import (
	"fmt"
	"math"
	"net"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// Labels and annotations this backend puts on Deployments and pods.
const (
	// LabelManagedBy marks every object of this backend, with value
	// DefaultFieldManager ("zeroscale"); its informers select on it.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelRevision and LabelConfiguration name the revision and its
	// configuration (service); LabelRevision is the Deployment's selector.
	LabelRevision      = "zeroscale.dev/revision"
	LabelConfiguration = "zeroscale.dev/configuration"
	// LabelKind is "reserved" on the reserved Deployment (ReservedSuffix)
	// and its pods (backend.Instance.Reserved); standard ones have none.
	LabelKind = "zeroscale.dev/instance-kind"
	// ReservedSuffix names a revision's reserved Deployment:
	// "<revision>-reserved" (revision names end in digits, so it is
	// never a revision's own).
	ReservedSuffix = "-reserved"
	// AnnotationSpecHash holds revision.Revision.SpecHash: Deploy of a
	// known name with another hash is ErrInvalidArgument.
	AnnotationSpecHash = "zeroscale.dev/spec-hash"
	// annotationDeletionCost is Kubernetes' pod-deletion-cost, which
	// Scale sets so the ReplicaSet controller removes the youngest pods
	// first.
	annotationDeletionCost = "controller.kubernetes.io/pod-deletion-cost"
	managedByValue         = "zeroscale"
	reservedKind           = "reserved"
)

// reservedPorts are the sidecar's; the app may not listen on them.
var reservedPorts = []int{QueueServingPort, QueueMetricsPort}

// checkSpec reports why s cannot run as a pod, wrapped in
// backend.ErrInvalidArgument.
func checkSpec(s revision.Spec) error {
	if s.Image == "" {
		return fmt.Errorf("%w: Spec.Image is empty: the Kubernetes backend runs container images (Command and Args only override the image's entrypoint)", backend.ErrInvalidArgument)
	}
	for _, p := range reservedPorts {
		if s.Port == p {
			return fmt.Errorf("%w: Spec.Port %d is the queue-proxy sidecar's (reserved: %d, %d); pick another port", backend.ErrInvalidArgument, p, QueueServingPort, QueueMetricsPort)
		}
	}
	return nil
}

// seconds rounds d up to whole seconds, as Kubernetes' *Seconds fields
// count, with a floor of min.
func seconds(d time.Duration, min int64) int64 {
	s := int64(math.Ceil(d.Seconds()))
	if s < min {
		return min
	}
	return s
}

// secondsString formats d as Knative's *_SECONDS variables (the
// queue-proxy also accepts fractions).
func secondsString(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}

// deployment builds rev's Deployment at replicas 0.
func (b *Backend) deployment(rev revision.Revision) *appsv1.Deployment {
	return b.deploymentOf(rev, false)
}

// deploymentOf builds rev's Deployment at replicas 0, or with reserved
// its reserved Deployment: named with ReservedSuffix, labelled and
// selected by LabelKind "reserved", its app container's resources the
// reserved profile's (CPU as request and limit, memory as limit).
func (b *Backend) deploymentOf(rev revision.Revision, reserved bool) *appsv1.Deployment {
	spec := rev.Spec().WithDefaults()
	labels := map[string]string{
		LabelManagedBy:     managedByValue,
		LabelRevision:      rev.Name(),
		LabelConfiguration: rev.Configuration(),
	}
	name, selector := rev.Name(), map[string]string{LabelRevision: rev.Name()}
	if reserved {
		name += ReservedSuffix
		labels[LabelKind], selector[LabelKind] = reservedKind, reservedKind
		p := spec.Scaling.Reserved(spec.Resources)
		spec.Resources = revision.Resources{CPURequestMillis: p.CPUMillis, CPULimitMillis: p.CPUMillis, MemoryLimitBytes: p.MemoryBytes}
	}
	replicas := int32(0)
	history := int32(0)
	maxUnavailable := intstr.FromInt32(0)
	grace := seconds(spec.Timeouts.Request+b.opts.QuietPeriod, 1)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   b.ns,
			Labels:      labels,
			Annotations: map[string]string{AnnotationSpecHash: rev.SpecHash()},
		},
		Spec: appsv1.DeploymentSpec{
			Replicas:             &replicas,
			RevisionHistoryLimit: &history,
			Selector:             &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type:          appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: &grace,
					EnableServiceLinks:            new(false),
					Containers:                    []corev1.Container{userContainer(rev, spec), b.queueContainer(rev, spec)},
				},
			},
		},
	}
	if b.opts.Customize != nil {
		b.opts.Customize(d)
	}
	return d
}

// userContainer runs the revision's image. It has no readiness probe:
// the queue-proxy probes the app (as in Knative), so the pod is ready
// when the app answers through it. Its preStop waits for the
// queue-proxy's drain, so the app gets SIGTERM only once the sidecar
// stopped sending it requests.
func userContainer(rev revision.Revision, spec revision.Spec) corev1.Container {
	env := []corev1.EnvVar{
		{Name: "PORT", Value: strconv.Itoa(spec.Port)},
		{Name: "K_REVISION", Value: rev.Name()},
		{Name: "K_CONFIGURATION", Value: rev.Configuration()},
		{Name: "K_SERVICE", Value: rev.Configuration()},
	}
	for _, e := range spec.Env {
		env = append(env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	return corev1.Container{
		Name:       UserContainer,
		Image:      spec.Image,
		Command:    spec.Command,
		Args:       spec.Args,
		WorkingDir: spec.WorkingDir,
		Env:        env,
		// Knative names the port after the app's protocol (http1, h2c).
		Ports:     []corev1.ContainerPort{{Name: protocol(spec), ContainerPort: int32(spec.Port), Protocol: corev1.ProtocolTCP}},
		Resources: resources(spec.Resources),
		// The same probe as the sidecar's: through the queue-proxy to the
		// app. Without it a restarted app container would count as ready
		// the moment it starts (kubelet's rule for containers without a
		// probe) while the sidecar's last result is still "ready".
		ReadinessProbe: readinessProbe(spec),
		Lifecycle: &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: hop.WaitForDrainPath,
			Port: intstr.FromInt32(QueueMetricsPort),
		}}},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func resources(r revision.Resources) corev1.ResourceRequirements {
	var out corev1.ResourceRequirements
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q *resource.Quantity) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = *q
	}
	if r.CPURequestMillis > 0 {
		set(&out.Requests, corev1.ResourceCPU, resource.NewMilliQuantity(r.CPURequestMillis, resource.DecimalSI))
	}
	if r.CPULimitMillis > 0 {
		set(&out.Limits, corev1.ResourceCPU, resource.NewMilliQuantity(r.CPULimitMillis, resource.DecimalSI))
	}
	if r.MemoryRequestBytes > 0 {
		set(&out.Requests, corev1.ResourceMemory, resource.NewQuantity(r.MemoryRequestBytes, resource.BinarySI))
	}
	if r.MemoryLimitBytes > 0 {
		set(&out.Limits, corev1.ResourceMemory, resource.NewQuantity(r.MemoryLimitBytes, resource.BinarySI))
	}
	return out
}

// queueContainer is the queue-proxy sidecar, configured through the
// environment variables cmd/queue-proxy reads (Knative's names where
// they exist). It owns the pod's readiness: kubelet probes its health
// path, which answers ready only once the app does.
func (b *Backend) queueContainer(rev revision.Revision, spec revision.Spec) corev1.Container {
	env := []corev1.EnvVar{
		{Name: "USER_PORT", Value: strconv.Itoa(spec.Port)},
		{Name: "USER_PROTOCOL", Value: protocol(spec)},
		{Name: "QUEUE_SERVING_PORT", Value: strconv.Itoa(QueueServingPort)},
		{Name: "QUEUE_METRICS_PORT", Value: strconv.Itoa(QueueMetricsPort)},
		{Name: "SERVING_REVISION", Value: rev.Name()},
		{Name: "SERVING_CONFIGURATION", Value: rev.Configuration()},
		{Name: "SERVING_NAMESPACE", Value: b.ns},
		{Name: "SERVING_POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "SERVING_POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "CONTAINER_CONCURRENCY", Value: strconv.Itoa(spec.ContainerConcurrency)},
		{Name: "REVISION_TIMEOUT_SECONDS", Value: secondsString(spec.Timeouts.Request)},
		{Name: "REVISION_RESPONSE_START_TIMEOUT_SECONDS", Value: secondsString(spec.Timeouts.ResponseStart)},
		{Name: "REVISION_IDLE_TIMEOUT_SECONDS", Value: secondsString(spec.Timeouts.Idle)},
		{Name: "PROBE_PATH", Value: spec.Readiness.HTTPPath},
		{Name: "PROBE_PERIOD", Value: spec.Readiness.Period.String()},
		{Name: "PROBE_TIMEOUT", Value: spec.Readiness.Timeout.String()},
		{Name: quietPeriodEnv, Value: b.opts.QuietPeriod.String()},
	}
	env = append(env, b.opts.QueueProxyEnv...)
	return corev1.Container{
		Name:  QueueContainer,
		Image: b.opts.QueueProxyImage,
		Env:   env,
		Ports: []corev1.ContainerPort{
			{Name: "queue-port", ContainerPort: QueueServingPort, Protocol: corev1.ProtocolTCP},
			{Name: "http-metrics", ContainerPort: QueueMetricsPort, Protocol: corev1.ProtocolTCP},
		},
		ReadinessProbe: readinessProbe(spec),
		// Knative's default sidecar request.
		Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("25m")}},
		SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: new(false),
			ReadOnlyRootFilesystem:   new(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

// quietPeriodEnv is the queue-proxy's variable for how long it keeps
// serving after SIGTERM once nothing is in flight (restarted by each
// request).
const quietPeriodEnv = "DRAIN_QUIET_PERIOD"

func podAddress(ip string, port int) string { return net.JoinHostPort(ip, strconv.Itoa(port)) }

// readinessProbe is kubelet's probe of the queue-proxy's health path,
// which answers 200 only once the queue-proxy's own probe of the app
// (spec.Readiness) passes and until it starts draining. Kubelet's
// period is whole seconds (at least 1 s); the queue-proxy probes the
// app every 50 ms until the first success, so the period adds at most
// one period to a cold start (less where the activator probes itself).
func readinessProbe(spec revision.Spec) *corev1.Probe {
	return &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: queueproxy.HealthPath,
			Port: intstr.FromInt32(QueueServingPort),
		}},
		PeriodSeconds:    int32(seconds(spec.Readiness.Period, 1)),
		TimeoutSeconds:   int32(seconds(spec.Readiness.Timeout, 1)),
		SuccessThreshold: 1,
		FailureThreshold: 3,
	}
}

// protocol is what the app speaks: revision.ProtocolHTTP1 or ProtocolH2C.
func protocol(spec revision.Spec) string {
	if spec.Protocol == "" {
		return revision.ProtocolHTTP1
	}
	return spec.Protocol
}
