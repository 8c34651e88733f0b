package knative

import (
	"fmt"
	"maps"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// Config is what a Service asks a host to run: the core packages' types
// that a Server's service spec is made of.
type Config struct {
	Name      string
	Namespace string // "" when the manifest gives none
	// Labels and Annotations are the Service's own metadata, kept so it
	// renders back as written.
	Labels      map[string]string
	Annotations map[string]string
	// Template is the revision template; RevisionName its
	// bring-your-own name ("" = numbered <name>-00001, ...).
	Template     revision.Spec
	RevisionName string
	// TemplateLabels and TemplateAnnotations are the template's metadata
	// other than the autoscaling.knative.dev/* annotations, which are in
	// Template.Scaling.
	TemplateLabels      map[string]string
	TemplateAnnotations map[string]string
	// Traffic is spec.traffic, with serving.knative.dev/rollout-duration.
	Traffic traffic.Spec
}

// ToConfig defaults a copy of svc (SetDefaults), validates it (Validate)
// and returns what it runs. svc is not modified.
func ToConfig(svc *Service) (Config, error) {
	s := svc.DeepCopy()
	s.SetDefaults()
	if err := s.Validate(); err != nil {
		return Config{}, err
	}
	rs := s.Spec.Template.Spec
	c := rs.Containers[0]
	spec := revision.Spec{
		Image:      c.Image,
		Command:    c.Command,
		Args:       c.Args,
		WorkingDir: c.WorkingDir,
	}
	for _, e := range c.Env {
		spec.Env = append(spec.Env, revision.EnvVar{Name: e.Name, Value: e.Value})
	}
	if len(c.Ports) > 0 {
		spec.Port = int(c.Ports[0].ContainerPort)
		spec.Protocol = c.Ports[0].Name // "", http1 or h2c (validated)
	}
	r := c.Resources
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		spec.Resources.CPURequestMillis = q.MilliValue()
	}
	if q, ok := r.Limits[corev1.ResourceCPU]; ok {
		spec.Resources.CPULimitMillis = q.MilliValue()
	}
	if q, ok := r.Requests[corev1.ResourceMemory]; ok {
		spec.Resources.MemoryRequestBytes = q.Value()
	}
	if q, ok := r.Limits[corev1.ResourceMemory]; ok {
		spec.Resources.MemoryLimitBytes = q.Value()
	}
	spec.ContainerConcurrency = int(deref(rs.ContainerConcurrency))
	spec.Timeouts = revision.Timeouts{
		Request:       seconds(rs.TimeoutSeconds),
		ResponseStart: seconds(rs.ResponseStartTimeoutSeconds),
		Idle:          seconds(rs.IdleTimeoutSeconds),
	}
	if p := c.ReadinessProbe; p != nil {
		if p.HTTPGet != nil {
			spec.Readiness.HTTPPath = p.HTTPGet.Path
			if spec.Readiness.HTTPPath == "" {
				spec.Readiness.HTTPPath = "/"
			}
		}
		spec.Readiness.Period = time.Duration(p.PeriodSeconds) * time.Second
		if p.PeriodSeconds != 0 {
			spec.Readiness.Timeout = time.Duration(p.TimeoutSeconds) * time.Second
		}
	}
	scaling, err := revision.ParseAnnotations(s.Spec.Template.Annotations)
	if err != nil { // Validate checked them; kept for safety
		return Config{}, err
	}
	spec.Scaling = scaling
	if spec.ProgressDeadline, err = revision.ParseProgressDeadline(s.Spec.Template.Annotations); err != nil {
		return Config{}, err
	}
	if spec.SocketActivation, err = revision.ParseSocketActivation(s.Spec.Template.Annotations); err != nil {
		return Config{}, err
	}
	if err := spec.Validate(); err != nil {
		return Config{}, fmt.Errorf("knative: service %q: %w", s.Name, err)
	}
	rollout, err := traffic.ParseRolloutDuration(s.Annotations)
	if err != nil {
		return Config{}, err
	}
	ts := toTrafficSpec(s.Spec.Traffic)
	ts.RolloutDuration = rollout
	return Config{
		Name:                s.Name,
		Namespace:           s.Namespace,
		Labels:              s.Labels,
		Annotations:         s.Annotations,
		Template:            spec,
		RevisionName:        s.Spec.Template.Name,
		TemplateLabels:      s.Spec.Template.Labels,
		TemplateAnnotations: withoutScaling(s.Spec.Template.Annotations),
		Traffic:             ts,
	}, nil
}

// withoutScaling returns a without the keys revision.ParseAnnotations,
// ParseProgressDeadline and ParseSocketActivation read (the template carries them),
// nil if nothing is left.
func withoutScaling(a map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.DeleteFunc(out, func(k, _ string) bool {
		return isScalingKey(k) || k == revision.ProgressDeadlineAnnotation || k == revision.SocketActivationAnnotation
	})
	if len(out) == 0 {
		return nil
	}
	return out
}

func isScalingKey(k string) bool {
	return strings.HasPrefix(k, revision.AnnotationPrefix) || k == revision.FloorScheduleAnnotation || k == revision.FloorLeadTimeAnnotation ||
		k == revision.IdleCheckPathAnnotation || k == revision.IdleModeAnnotation || k == revision.StandbyRetentionAnnotation ||
		k == revision.ReservedCPUAnnotation || k == revision.ReservedMemoryAnnotation || k == revision.ReservedNiceAnnotation
}

func seconds(p *int64) time.Duration {
	if p == nil {
		return 0
	}
	return time.Duration(*p) * time.Second
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

func toTrafficSpec(targets []TrafficTarget) traffic.Spec {
	var ts traffic.Spec
	for _, t := range targets {
		ts.Traffic = append(ts.Traffic, traffic.Target{
			Tag:               t.Tag,
			RevisionName:      t.RevisionName,
			LatestRevision:    deref(t.LatestRevision),
			ConfigurationName: t.ConfigurationName,
			Percent:           int(deref(t.Percent)),
		})
	}
	return ts
}

// FromConfig renders c as a Service (apiVersion, kind, metadata and
// spec; no status): the inverse of ToConfig for everything ToConfig
// keeps, with Knative's defaults filled in.
func FromConfig(c Config) *Service {
	s := &Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: APIVersion, Kind: KindService},
		ObjectMeta: metav1.ObjectMeta{Name: c.Name, Namespace: c.Namespace, Labels: c.Labels, Annotations: c.Annotations},
		Spec: ServiceSpec{
			Template: RevisionTemplate(c.Template, c.RevisionName),
		},
	}
	s.Spec.Template.Labels = c.TemplateLabels
	if len(c.TemplateAnnotations) > 0 {
		if s.Spec.Template.Annotations == nil {
			s.Spec.Template.Annotations = map[string]string{}
		}
		maps.Copy(s.Spec.Template.Annotations, c.TemplateAnnotations)
	}
	s.Spec.Traffic = fromTraffic(c.Traffic.Traffic)
	s.SetDefaults()
	return s
}

// fromTraffic renders traffic targets as spec.traffic entries.
func fromTraffic(targets []traffic.Target) []TrafficTarget {
	var out []TrafficTarget
	for _, t := range targets {
		out = append(out, TrafficTarget{
			Tag:               t.Tag,
			RevisionName:      t.RevisionName,
			ConfigurationName: t.ConfigurationName,
			LatestRevision:    ptr(t.LatestRevision),
			Percent:           ptr(int64(t.Percent)),
		})
	}
	return out
}

// RevisionTemplate renders a revision spec as a Service's template
// (autoscaling settings and the progress deadline as annotations),
// named name when not "".
func RevisionTemplate(spec revision.Spec, name string) RevisionTemplateSpec {
	t := RevisionTemplateSpec{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: revisionSpecOf(spec)}
	a := spec.Scaling.Annotations()
	if d := spec.ProgressDeadline; d > 0 {
		if a == nil {
			a = map[string]string{}
		}
		a[revision.ProgressDeadlineAnnotation] = d.String()
	}
	if spec.SocketActivation {
		if a == nil {
			a = map[string]string{}
		}
		a[revision.SocketActivationAnnotation] = "true"
	}
	if len(a) > 0 {
		t.Annotations = a
	}
	return t
}

// revisionSpecOf renders a revision spec as Knative's RevisionSpec, with
// Knative's defaults filled in.
func revisionSpecOf(spec revision.Spec) RevisionSpec {
	c := corev1.Container{
		Name:       DefaultContainerName,
		Image:      spec.Image,
		Command:    spec.Command,
		Args:       spec.Args,
		WorkingDir: spec.WorkingDir,
	}
	for _, e := range spec.Env {
		c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
	}
	if spec.Port != 0 || spec.Protocol != "" {
		c.Ports = []corev1.ContainerPort{{Name: spec.Protocol, ContainerPort: int32(spec.Port)}}
	}
	r := spec.Resources
	set := func(list *corev1.ResourceList, name corev1.ResourceName, q *resource.Quantity) {
		if *list == nil {
			*list = corev1.ResourceList{}
		}
		(*list)[name] = *q
	}
	if r.CPURequestMillis != 0 {
		set(&c.Resources.Requests, corev1.ResourceCPU, resource.NewMilliQuantity(r.CPURequestMillis, resource.DecimalSI))
	}
	if r.CPULimitMillis != 0 {
		set(&c.Resources.Limits, corev1.ResourceCPU, resource.NewMilliQuantity(r.CPULimitMillis, resource.DecimalSI))
	}
	if r.MemoryRequestBytes != 0 {
		set(&c.Resources.Requests, corev1.ResourceMemory, resource.NewQuantity(r.MemoryRequestBytes, resource.BinarySI))
	}
	if r.MemoryLimitBytes != 0 {
		set(&c.Resources.Limits, corev1.ResourceMemory, resource.NewQuantity(r.MemoryLimitBytes, resource.BinarySI))
	}
	p := &corev1.Probe{SuccessThreshold: 1}
	if spec.Readiness.HTTPPath != "" {
		p.HTTPGet = &corev1.HTTPGetAction{Path: spec.Readiness.HTTPPath, Port: intstr.FromInt32(0)}
	} else {
		p.TCPSocket = &corev1.TCPSocketAction{}
	}
	if spec.Readiness.Period > 0 {
		p.PeriodSeconds = ceilSeconds(spec.Readiness.Period)
		p.TimeoutSeconds = ceilSeconds(spec.Readiness.Timeout)
	}
	c.ReadinessProbe = p
	rs := RevisionSpec{
		PodSpec:              corev1.PodSpec{Containers: []corev1.Container{c}},
		ContainerConcurrency: ptr(int64(spec.ContainerConcurrency)),
	}
	if t := spec.Timeouts.Request; t > 0 {
		rs.TimeoutSeconds = ptr(int64(ceilSeconds(t)))
	}
	if t := spec.Timeouts.ResponseStart; t > 0 {
		rs.ResponseStartTimeoutSeconds = ptr(int64(ceilSeconds(t)))
	}
	if t := spec.Timeouts.Idle; t > 0 {
		rs.IdleTimeoutSeconds = ptr(int64(ceilSeconds(t)))
	}
	defaultRevisionSpec(&rs)
	return rs
}

func ceilSeconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}

// defaultRevisionSpec applies SetDefaults' template part to rs.
func defaultRevisionSpec(rs *RevisionSpec) {
	s := Service{Spec: ServiceSpec{Template: RevisionTemplateSpec{Spec: *rs}}}
	s.SetDefaults()
	*rs = s.Spec.Template.Spec
}
