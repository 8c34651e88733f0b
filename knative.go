package zeroscale

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale/knative"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// ErrRevisionInUse is returned by DeleteRevision for a revision that
// receives traffic or runs the service's current template.
var ErrRevisionInUse = errors.New("zeroscale: revision in use")

// knMeta is what a service keeps of the Knative manifest it was last
// applied from, so it renders back as written.
type knMeta struct {
	manifest   *knative.Service // defaulted, as applied
	spec       ServiceSpec      // what it converted to
	generation int64            // metadata.generation: counts spec changes
	created    time.Time
}

// ApplyKnative creates or updates the service a Knative Service manifest
// describes, as "kubectl apply" of it would: Knative's defaults are
// filled in, every problem is reported at once with its path (a
// *revision.FieldError each, in Knative's words), and a changed template
// stamps a new revision (see Apply). Its metadata.namespace, when set,
// must be the Server's Options.Namespace. It returns the service as
// Knative renders it (KnativeService) right after the change.
//
// A container with only a command runs on the default process backend;
// one with an image needs an engine that runs images, e.g.
// Options.NewProxiedBackend = docker.ServerFactory(...), or a
// backend/dispatch over both, as cmd/zeroscale serve does.
func (s *Server) ApplyKnative(ctx context.Context, ks *knative.Service) (*knative.Service, error) {
	if ks.Namespace != "" && ks.Namespace != s.o.Namespace {
		return nil, &revision.FieldError{Message: fmt.Sprintf("invalid value: %q", ks.Namespace), Field: "metadata.namespace",
			Allowed: fmt.Sprintf("this server serves namespace %q only", s.o.Namespace)}
	}
	c, err := knative.ToConfig(ks)
	if err != nil {
		return nil, err
	}
	spec := ServiceSpec{
		Name:            c.Name,
		Template:        c.Template,
		RevisionName:    c.RevisionName,
		Traffic:         c.Traffic.Traffic,
		RolloutDuration: c.Traffic.RolloutDuration,
	}
	manifest := ks.DeepCopy()
	manifest.SetDefaults()
	manifest.Namespace = s.o.Namespace
	manifest.Status = knative.ServiceStatus{}
	manifest.ResourceVersion, manifest.UID, manifest.ManagedFields = "", "", nil
	manifest.CreationTimestamp, manifest.Generation = metav1.Time{}, 0

	st, err := s.Apply(ctx, spec)
	if err != nil && st.Name == "" {
		return nil, err // refused: nothing changed
	}
	// Applied, though its new revision may have failed to deploy.
	s.mu.Lock()
	svc := s.services[spec.Name]
	s.mu.Unlock()
	if svc != nil {
		svc.mu.Lock()
		prev := svc.kn
		m := &knMeta{manifest: manifest, spec: spec, generation: 1, created: s.o.Clock.Now()}
		if prev != nil {
			m.created, m.generation = prev.created, prev.generation
			if !reflect.DeepEqual(prev.manifest.Spec, manifest.Spec) {
				m.generation++
			}
		} else if r := svc.conf.Revisions(); len(r) > 0 {
			m.created = r[0].Created()
		}
		svc.kn = m
		svc.mu.Unlock()
	}
	if err != nil {
		return nil, err
	}
	return s.KnativeService(spec.Name)
}

// KnativeService returns the service called name as a Knative Service:
// its spec as last applied (Knative's defaults filled in; rendered from
// its ServiceSpec when it was applied with Apply), and its status now:
// URL, latest created and ready revisions, the traffic served with each
// tag's URL, and the Ready, ConfigurationsReady and RoutesReady
// conditions. The error wraps ErrServiceNotFound for an unknown name.
func (s *Server) KnativeService(name string) (*knative.Service, error) {
	s.mu.Lock()
	svc := s.services[name]
	s.mu.Unlock()
	if svc == nil {
		return nil, fmt.Errorf("%w: %q", ErrServiceNotFound, name)
	}
	ks, _ := s.knativeService(svc)
	return ks, nil
}

// knativeServices renders every service, by name.
func (s *Server) knativeServices() []knative.Service {
	var out []knative.Service
	for _, svc := range s.sortedServices() {
		ks, _ := s.knativeService(svc)
		out = append(out, *ks)
	}
	return out
}

// currentSpec is the ServiceSpec svc runs now, and its Knative metadata.
func (s *Server) currentSpec(svc *service) (ServiceSpec, *knMeta) {
	svc.mu.Lock()
	m, tspec := svc.kn, svc.spec
	svc.mu.Unlock()
	spec := ServiceSpec{Name: svc.name, Traffic: tspec.Traffic, RolloutDuration: tspec.RolloutDuration}
	if r, ok := svc.conf.LatestCreated(); ok {
		spec.Template = r.Spec()
		if r.Name() != fmt.Sprintf("%s-%05d", svc.name, r.Generation()) {
			spec.RevisionName = r.Name()
		}
	}
	return spec, m
}

func (s *Server) knativeService(svc *service) (*knative.Service, ServiceStatus) {
	spec, m := s.currentSpec(svc)
	var ks *knative.Service
	if m != nil && m.spec.RevisionName == spec.RevisionName && m.spec.Template.Hash() == spec.Template.Hash() &&
		reflect.DeepEqual(m.spec.Traffic, spec.Traffic) && m.spec.RolloutDuration == spec.RolloutDuration {
		ks = m.manifest.DeepCopy()
	} else {
		c := knative.Config{Name: spec.Name, Namespace: s.o.Namespace, Template: spec.Template, RevisionName: spec.RevisionName,
			Traffic: traffic.Spec{Traffic: spec.Traffic, RolloutDuration: spec.RolloutDuration}}
		if m != nil {
			c.Labels, c.Annotations = m.manifest.Labels, m.manifest.Annotations
		}
		ks = knative.FromConfig(c)
	}
	ks.Namespace = s.o.Namespace
	generation := svc.conf.Generation()
	created := time.Time{}
	if revs := svc.conf.Revisions(); len(revs) > 0 {
		created = revs[0].Created()
	}
	if m != nil {
		generation, created = m.generation, m.created
	}
	ks.Generation = generation
	ks.CreationTimestamp = metav1.NewTime(created)

	st := s.serviceStatus(svc)
	ks.Status = knative.ServiceStatus{
		ObservedGeneration:        generation,
		LatestCreatedRevisionName: st.LatestCreatedRevision,
		LatestReadyRevisionName:   st.LatestReadyRevision,
		URL:                       st.URL,
		Address:                   &knative.Addressable{URL: st.URL},
		Traffic:                   statusTraffic(ks.Spec.Traffic, st),
		Conditions:                s.serviceConditions(svc, st),
	}
	return ks, st
}

// statusTraffic renders the traffic served as Knative's status.traffic:
// the spec's targets resolved to revisions, with tag URLs; while a
// rollout (or the first revision) has the served split differ from the
// spec, the split as served.
func statusTraffic(targets []knative.TrafficTarget, st ServiceStatus) []knative.TrafficTarget {
	served := map[string]int{}
	tagURL := map[string]string{}
	tagRev := map[string]string{}
	for _, t := range st.Traffic {
		if t.Tag == "" {
			served[t.Revision] += t.Percent
		} else {
			tagURL[t.Tag], tagRev[t.Tag] = t.URL, t.Revision
		}
	}
	resolved := map[string]int{}
	var out []knative.TrafficTarget
	for _, t := range targets {
		rev := t.RevisionName
		if t.LatestRevision != nil && *t.LatestRevision {
			rev = st.LatestReadyRevision
		}
		if t.Tag != "" && tagRev[t.Tag] != "" {
			rev = tagRev[t.Tag]
		}
		p := int64(0)
		if t.Percent != nil {
			p = *t.Percent
		}
		if p > 0 {
			resolved[rev] += int(p)
		}
		out = append(out, knative.TrafficTarget{Tag: t.Tag, RevisionName: rev, LatestRevision: t.LatestRevision, Percent: &p, URL: tagURL[t.Tag]})
	}
	if maps.Equal(resolved, served) {
		return out
	}
	out = out[:0]
	for _, t := range st.Traffic {
		p := int64(t.Percent)
		if t.Tag != "" {
			p = 0
		}
		out = append(out, knative.TrafficTarget{Tag: t.Tag, RevisionName: t.Revision, Percent: &p, URL: t.URL,
			LatestRevision: new(t.Revision == st.LatestReadyRevision && t.Tag == "")})
	}
	return out
}

// Knative's condition reasons and messages (serving's *_lifecycle.go).
const (
	reasonRevisionFailed     Reason = "RevisionFailed"
	reasonTrafficNotMigrated Reason = "TrafficNotMigrated"
	msgTrafficNotMigrated           = "Traffic is not yet migrated to the latest revision."
)

// toKnative is c as Knative's condition of type t.
func toKnative(t knative.ConditionType, c Condition) knative.Condition {
	return knative.Condition{Type: t, Status: corev1.ConditionStatus(c.Status), Reason: string(c.Reason), Message: c.Message}
}

func (s *Server) serviceConditions(svc *service, st ServiceStatus) []knative.Condition {
	conf := knative.Condition{Type: knative.ConditionConfigurationsReady, Status: knative.StatusUnknown}
	if latest := st.LatestCreatedRevision; latest != "" {
		state, reason, _ := svc.conf.State(latest)
		switch state {
		case revision.StateReady:
			conf.Status = knative.StatusTrue
		case revision.StateFailed:
			conf.Status, conf.Reason = knative.StatusFalse, string(reasonRevisionFailed)
			conf.Message = fmt.Sprintf("Revision %q failed with message: %s.", latest, reason)
		default:
			conf.Reason = string(ReasonDeploying)
			conf.Message = fmt.Sprintf("Revision %q is not yet ready.", latest)
			// A revision whose instances keep crashing before it was
			// ever ready has failed, as in Knative, where ContainerHealthy
			// False makes the revision's Ready False.
			for _, rs := range st.Revisions {
				if c, ok := rs.Condition(ConditionContainerHealthy); ok && rs.Name == latest && c.Status == ConditionFalse {
					conf.Status, conf.Reason = knative.StatusFalse, string(reasonRevisionFailed)
					conf.Message = fmt.Sprintf("Revision %q failed with message: %s.", latest, c.Message)
				}
			}
		}
	}
	route := knative.Condition{Type: knative.ConditionRoutesReady, Status: knative.StatusUnknown}
	if c, ok := st.Condition(ConditionReady); ok {
		route = toKnative(knative.ConditionRoutesReady, c)
		if c.Status == ConditionUnknown && (c.Reason == ReasonDeploying || st.LatestReadyRevision == "") {
			route.Reason = string(ReasonRevisionMissing)
			route.Message = fmt.Sprintf("Configuration %q is waiting for a Revision to become ready.", svc.name)
		}
	}
	ready := knative.Condition{Type: knative.ConditionReady, Status: knative.StatusTrue}
	switch {
	case conf.Status == knative.StatusFalse:
		ready.Status, ready.Reason, ready.Message = conf.Status, conf.Reason, conf.Message
	case route.Status == knative.StatusFalse:
		ready.Status, ready.Reason, ready.Message = route.Status, route.Reason, route.Message
	case conf.Status == knative.StatusUnknown && route.Status == knative.StatusTrue && st.LatestReadyRevision != "":
		ready.Status, ready.Reason, ready.Message = knative.StatusUnknown, string(reasonTrafficNotMigrated), msgTrafficNotMigrated
	case route.Status == knative.StatusUnknown:
		ready.Status, ready.Reason, ready.Message = route.Status, route.Reason, route.Message
	case conf.Status == knative.StatusUnknown:
		ready.Status, ready.Reason, ready.Message = conf.Status, conf.Reason, conf.Message
	}
	return []knative.Condition{ready, conf, route}
}

// knativeRevisions renders the revisions of service (every service when
// ""), newest first within each service.
func (s *Server) knativeRevisions(service string) []knative.Revision {
	var out []knative.Revision
	for _, svc := range s.sortedServices() {
		if service != "" && svc.name != service {
			continue
		}
		st := s.serviceStatus(svc)
		for _, rs := range st.Revisions {
			if r, ok := svc.conf.Revision(rs.Name); ok {
				out = append(out, s.knativeRevision(svc, r, rs))
			}
		}
	}
	return out
}

// knativeRevision renders one revision with its status.
func (s *Server) knativeRevision(svc *service, r revision.Revision, rs RevisionStatus) knative.Revision {
	tmpl := knative.RevisionTemplate(r.Spec(), r.Name())
	kr := knative.Revision{
		TypeMeta: metav1.TypeMeta{APIVersion: knative.APIVersion, Kind: knative.KindRevision},
		ObjectMeta: metav1.ObjectMeta{
			Name:              r.Name(),
			Namespace:         s.o.Namespace,
			Generation:        1,
			CreationTimestamp: metav1.NewTime(r.Created()),
			Labels: map[string]string{
				knative.ServiceLabel:                 svc.name,
				knative.ConfigurationLabel:           svc.name,
				knative.ConfigurationGenerationLabel: fmt.Sprint(r.Generation()),
			},
			Annotations: tmpl.Annotations,
		},
		Spec: tmpl.Spec,
	}
	if len(kr.Annotations) == 0 {
		kr.Annotations = nil
	}
	kr.Status.ObservedGeneration = 1
	actual := int32(rs.ActualScale)
	kr.Status.ActualReplicas = &actual
	if rs.RequestedScale >= 0 {
		desired := int32(rs.RequestedScale) // Knative's DesiredReplicas is the PodAutoscaler's bounded scale
		kr.Status.DesiredReplicas = &desired
	}
	for _, c := range rs.Conditions {
		kc := toKnative(knative.ConditionType(c.Type), c)
		if c.Type == ConditionActive {
			kc.Severity = "Info" // as Knative's: idle is not a failure
		}
		kr.Status.Conditions = append(kr.Status.Conditions, kc)
	}
	return kr
}

// knativeRoutes renders each service's route, by name.
func (s *Server) knativeRoutes() []knative.Route {
	var out []knative.Route
	for _, svc := range s.sortedServices() {
		ks, _ := s.knativeService(svc)
		rt := knative.Route{
			TypeMeta: metav1.TypeMeta{APIVersion: knative.APIVersion, Kind: knative.KindRoute},
			ObjectMeta: metav1.ObjectMeta{Name: svc.name, Namespace: s.o.Namespace, Generation: ks.Generation,
				CreationTimestamp: ks.CreationTimestamp, Labels: map[string]string{knative.ServiceLabel: svc.name}},
			Spec: knative.RouteSpec{Traffic: ks.Spec.Traffic},
			Status: knative.RouteStatus{ObservedGeneration: ks.Generation, URL: ks.Status.URL, Address: ks.Status.Address,
				Traffic: ks.Status.Traffic},
		}
		if c, ok := ks.Status.Condition(knative.ConditionRoutesReady); ok {
			c.Type = knative.ConditionReady
			rt.Status.Conditions = append(rt.Status.Conditions, c)
		}
		out = append(out, rt)
	}
	return out
}

// DeleteRevision removes a revision that no traffic reaches, as "kn
// revision delete" does: its instances drain and stop and it is
// forgotten. It refuses (ErrRevisionInUse) a revision that a traffic
// target or tag routes to, and the revision of the service's current
// template, where Knative would let the route fail or stamp the
// revision again. The error wraps revision.ErrNotFound for an unknown name.
func (s *Server) DeleteRevision(ctx context.Context, name string) error {
	for _, svc := range s.sortedServices() {
		if _, ok := svc.conf.Revision(name); !ok {
			continue
		}
		svc.mu.Lock()
		routed := routedRevisions(svc.route.Traffic())[name] ||
			slices.ContainsFunc(svc.spec.Traffic, func(t traffic.Target) bool { return t.RevisionName == name })
		latest, _ := svc.conf.LatestCreated()
		svc.mu.Unlock()
		switch {
		case routed:
			return fmt.Errorf("%w: %s receives traffic of service %s; move its traffic first", ErrRevisionInUse, name, svc.name)
		case latest.Name() == name:
			return fmt.Errorf("%w: %s runs the current template of service %s; update the service or delete the service", ErrRevisionInUse, name, svc.name)
		}
		if err := s.removeRevision(ctx, svc, name); err != nil {
			return err
		}
		svc.mu.Lock()
		err := svc.conf.Remove(name)
		s.updateRoute(svc)
		svc.mu.Unlock()
		if err != nil && !errors.Is(err, revision.ErrNotFound) {
			return fmt.Errorf("zeroscale: delete revision %s: %w", name, err)
		}
		return nil
	}
	return fmt.Errorf("zeroscale: no service has revision %q: %w", name, revision.ErrNotFound)
}
