package knative

import (
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/zeroscale/zeroscale/revision"
)

// Knative's defaults (config-defaults and the serving webhook).
const (
	// DefaultContainerName names the user container when the manifest
	// does not.
	DefaultContainerName = "user-container"
	// MaxTimeoutSeconds is max-revision-timeout-seconds. The default
	// (revision-timeout-seconds) is revision.DefaultRequestTimeout, the
	// default port revision.DefaultPort, and container-concurrency-max-limit
	// revision.MaxContainerConcurrency: the same numbers as Knative's.
	MaxTimeoutSeconds = 600
)

// defaultTimeoutSeconds is revision.DefaultRequestTimeout in seconds.
const defaultTimeoutSeconds = int64(revision.DefaultRequestTimeout / time.Second)

// SetDefaults fills in what Knative's defaulting webhook fills in: the
// container name (user-container), timeoutSeconds (300),
// containerConcurrency (0, unlimited), a TCP readiness probe with
// successThreshold 1 when the container has none (Kubernetes' period
// defaults when periodSeconds is set), latestRevision on each traffic
// target (true unless it names a revision) and, without traffic, 100 % to
// the latest ready revision. It is idempotent.
func (s *Service) SetDefaults() {
	rs := &s.Spec.Template.Spec
	if rs.TimeoutSeconds == nil || *rs.TimeoutSeconds == 0 {
		rs.TimeoutSeconds = ptr(defaultTimeoutSeconds)
	}
	if rs.ContainerConcurrency == nil {
		rs.ContainerConcurrency = ptr(int64(0))
	}
	for i := range rs.Containers {
		c := &rs.Containers[i]
		if c.Name == "" {
			c.Name = DefaultContainerName
		}
		if len(rs.Containers) == 1 || len(c.Ports) > 0 {
			defaultReadiness(c)
		}
	}
	if len(s.Spec.Traffic) == 0 {
		s.Spec.Traffic = []TrafficTarget{{LatestRevision: ptr(true), Percent: ptr(int64(100))}}
	}
	for i := range s.Spec.Traffic {
		t := &s.Spec.Traffic[i]
		if t.LatestRevision == nil {
			t.LatestRevision = ptr(t.RevisionName == "")
		}
	}
}

// defaultReadiness is Knative's applyUserContainerDefaultReadinessProbe.
func defaultReadiness(c *corev1.Container) {
	if c.ReadinessProbe == nil {
		c.ReadinessProbe = &corev1.Probe{}
	}
	p := c.ReadinessProbe
	if p.TCPSocket == nil && p.HTTPGet == nil && p.Exec == nil && p.GRPC == nil {
		p.TCPSocket = &corev1.TCPSocketAction{}
	}
	if p.SuccessThreshold == 0 {
		p.SuccessThreshold = 1
	}
	if p.PeriodSeconds != 0 {
		if p.FailureThreshold == 0 {
			p.FailureThreshold = 3
		}
		if p.TimeoutSeconds == 0 {
			p.TimeoutSeconds = 1
		}
	}
}

func ptr[T any](v T) *T { return &v }
