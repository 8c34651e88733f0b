package knative

import (
	"slices"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// APIVersion and the kinds this package reads and writes.
const (
	APIVersion   = "serving.knative.dev/v1"
	KindService  = "Service"
	KindRevision = "Revision"
	KindRoute    = "Route"
	kindList     = "List"
)

// Labels Knative puts on a Revision, and that Revision and Route
// renderings carry here.
const (
	ServiceLabel                 = "serving.knative.dev/service"
	ConfigurationLabel           = "serving.knative.dev/configuration"
	ConfigurationGenerationLabel = "serving.knative.dev/configurationGeneration"
	RouteLabel                   = "serving.knative.dev/route"
)

// Service is a serving.knative.dev/v1 Service: Knative's type, field for
// field, for the subset a Service runs here (see Validate). Spec is what
// its user wrote (plus Knative's defaults after SetDefaults); Status is
// filled by a host rendering what runs now and ignored on input, as the
// Kubernetes API server ignores status on create.
type Service struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ServiceSpec   `json:"spec,omitempty"`
	Status            ServiceStatus `json:"status,omitempty"`
}

// ServiceSpec is Knative's ConfigurationSpec (the template) and RouteSpec
// (the traffic) inline.
type ServiceSpec struct {
	Template RevisionTemplateSpec `json:"template"`
	Traffic  []TrafficTarget      `json:"traffic,omitempty"`
}

// RevisionTemplateSpec is what each new revision runs: its metadata
// (name = bring-your-own revision name; annotations = autoscaling) and
// its spec.
type RevisionTemplateSpec struct {
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RevisionSpec `json:"spec,omitempty"`
}

// RevisionSpec is a Kubernetes PodSpec plus Knative's per-revision
// request settings.
type RevisionSpec struct {
	corev1.PodSpec `json:",inline"`
	// ContainerConcurrency is the hard limit of requests in flight per
	// instance; 0 means unlimited.
	ContainerConcurrency *int64 `json:"containerConcurrency,omitempty"`
	// TimeoutSeconds bounds a whole request.
	TimeoutSeconds *int64 `json:"timeoutSeconds,omitempty"`
	// ResponseStartTimeoutSeconds bounds the time to the first byte.
	ResponseStartTimeoutSeconds *int64 `json:"responseStartTimeoutSeconds,omitempty"`
	// IdleTimeoutSeconds bounds the time between two response writes.
	IdleTimeoutSeconds *int64 `json:"idleTimeoutSeconds,omitempty"`
}

// TrafficTarget is one entry of spec.traffic or status.traffic.
type TrafficTarget struct {
	Tag               string `json:"tag,omitempty"`
	RevisionName      string `json:"revisionName,omitempty"`
	ConfigurationName string `json:"configurationName,omitempty"`
	LatestRevision    *bool  `json:"latestRevision,omitempty"`
	Percent           *int64 `json:"percent,omitempty"`
	// URL is the tag's own URL (status only).
	URL string `json:"url,omitempty"`
}

// Condition is a Knative condition (knative.dev/pkg/apis.Condition).
type Condition struct {
	Type               ConditionType          `json:"type"`
	Status             corev1.ConditionStatus `json:"status"`
	Severity           string                 `json:"severity,omitempty"`
	LastTransitionTime *metav1.Time           `json:"lastTransitionTime,omitempty"`
	Reason             string                 `json:"reason,omitempty"`
	Message            string                 `json:"message,omitempty"`
}

// ConditionType names the aspect a Condition reports
// (knative.dev/pkg/apis.ConditionType).
type ConditionType string

// Condition types, Knative's.
const (
	ConditionReady               ConditionType = "Ready"
	ConditionConfigurationsReady ConditionType = "ConfigurationsReady"
	ConditionRoutesReady         ConditionType = "RoutesReady"
	ConditionActive              ConditionType = "Active"
	ConditionContainerHealthy    ConditionType = "ContainerHealthy"
	ConditionResourcesAvailable  ConditionType = "ResourcesAvailable"
	ConditionAllTrafficAssigned  ConditionType = "AllTrafficAssigned"
)

// Condition statuses, Kubernetes'.
const (
	StatusTrue    = corev1.ConditionTrue
	StatusFalse   = corev1.ConditionFalse
	StatusUnknown = corev1.ConditionUnknown
)

// Addressable is a status address.
type Addressable struct {
	URL string `json:"url,omitempty"`
}

// ServiceStatus is Knative's Service status: its URL, latest created and
// ready revisions, the traffic served (tags with their URLs) and the
// Ready, ConfigurationsReady and RoutesReady conditions.
type ServiceStatus struct {
	ObservedGeneration        int64           `json:"observedGeneration,omitempty"`
	Conditions                []Condition     `json:"conditions,omitempty"`
	LatestReadyRevisionName   string          `json:"latestReadyRevisionName,omitempty"`
	LatestCreatedRevisionName string          `json:"latestCreatedRevisionName,omitempty"`
	URL                       string          `json:"url,omitempty"`
	Address                   *Addressable    `json:"address,omitempty"`
	Traffic                   []TrafficTarget `json:"traffic,omitempty"`
}

// Revision is a serving.knative.dev/v1 Revision: one immutable snapshot
// of a Service's template.
type Revision struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RevisionSpec   `json:"spec,omitempty"`
	Status            RevisionStatus `json:"status,omitempty"`
}

// RevisionStatus is Knative's Revision status, with the replica counts
// kn prints.
type RevisionStatus struct {
	ObservedGeneration int64       `json:"observedGeneration,omitempty"`
	Conditions         []Condition `json:"conditions,omitempty"`
	ActualReplicas     *int32      `json:"actualReplicas,omitempty"`
	DesiredReplicas    *int32      `json:"desiredReplicas,omitempty"`
}

// Route is a serving.knative.dev/v1 Route: a Service's traffic.
type Route struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              RouteSpec   `json:"spec,omitempty"`
	Status            RouteStatus `json:"status,omitempty"`
}

// RouteSpec is the desired traffic.
type RouteSpec struct {
	Traffic []TrafficTarget `json:"traffic,omitempty"`
}

// RouteStatus is the traffic served, and where.
type RouteStatus struct {
	ObservedGeneration int64           `json:"observedGeneration,omitempty"`
	Conditions         []Condition     `json:"conditions,omitempty"`
	URL                string          `json:"url,omitempty"`
	Address            *Addressable    `json:"address,omitempty"`
	Traffic            []TrafficTarget `json:"traffic,omitempty"`
}

// ServiceList, RevisionList and RouteList are what list requests return,
// in the shape of Kubernetes lists.
type ServiceList struct {
	metav1.TypeMeta `json:",inline"`
	Items           []Service `json:"items"`
}

// RevisionList is a list of Revisions.
type RevisionList struct {
	metav1.TypeMeta `json:",inline"`
	Items           []Revision `json:"items"`
}

// RouteList is a list of Routes.
type RouteList struct {
	metav1.TypeMeta `json:",inline"`
	Items           []Route `json:"items"`
}

// Condition returns the condition of type t, if set.
func (s ServiceStatus) Condition(t ConditionType) (Condition, bool) {
	return findCondition(s.Conditions, t)
}

// Condition returns the condition of type t, if set.
func (s RevisionStatus) Condition(t ConditionType) (Condition, bool) {
	return findCondition(s.Conditions, t)
}

// Condition returns the condition of type t, if set.
func (s RouteStatus) Condition(t ConditionType) (Condition, bool) {
	return findCondition(s.Conditions, t)
}

func findCondition(cs []Condition, t ConditionType) (Condition, bool) {
	for _, c := range cs {
		if c.Type == t {
			return c, true
		}
	}
	return Condition{}, false
}

// DeepCopy returns a copy of s that shares nothing with it.
func (s *Service) DeepCopy() *Service {
	out := *s
	s.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	s.Spec.Template.ObjectMeta.DeepCopyInto(&out.Spec.Template.ObjectMeta)
	out.Spec.Template.Spec = s.Spec.Template.Spec.DeepCopy()
	out.Spec.Traffic = cloneTargets(s.Spec.Traffic)
	out.Status.Conditions = slices.Clone(s.Status.Conditions)
	out.Status.Traffic = cloneTargets(s.Status.Traffic)
	if a := s.Status.Address; a != nil {
		out.Status.Address = &Addressable{URL: a.URL}
	}
	return &out
}

// DeepCopy returns a copy of rs that shares nothing with it.
func (rs RevisionSpec) DeepCopy() RevisionSpec {
	out := rs
	rs.PodSpec.DeepCopyInto(&out.PodSpec)
	out.ContainerConcurrency = clonePtr(rs.ContainerConcurrency)
	out.TimeoutSeconds = clonePtr(rs.TimeoutSeconds)
	out.ResponseStartTimeoutSeconds = clonePtr(rs.ResponseStartTimeoutSeconds)
	out.IdleTimeoutSeconds = clonePtr(rs.IdleTimeoutSeconds)
	return out
}

func cloneTargets(ts []TrafficTarget) []TrafficTarget {
	if ts == nil {
		return nil
	}
	out := make([]TrafficTarget, len(ts))
	for i, t := range ts {
		t.LatestRevision = clonePtr(t.LatestRevision)
		t.Percent = clonePtr(t.Percent)
		out[i] = t
	}
	return out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
