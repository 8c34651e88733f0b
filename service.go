package zeroscale

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// ServiceSpec is a service: a name, the template its revisions run and
// how its traffic is split, Knative's Service in one struct.
type ServiceSpec struct {
	// Name is a DNS-1035 label; the service is served at
	// {{.Name}}.{{.Namespace}}.{{.Domain}}.
	Name string
	// Template is what each instance runs and how it scales. Applying a
	// changed template stamps a new revision (<name>-00002, …).
	Template revision.Spec
	// RevisionName, when set, names the template's revision instead of
	// the generated <name>-<generation> (Knative's bring-your-own name;
	// it must start with "<name>-").
	RevisionName string
	// Traffic splits requests over revisions; nil means 100 % to the
	// latest ready revision. See traffic.Target.
	Traffic []traffic.Target
	// RolloutDuration, when positive, moves traffic to a new latest
	// ready revision gradually over about this long (Knative's
	// serving.knative.dev/rollout-duration).
	RolloutDuration time.Duration
}

func (spec ServiceSpec) trafficSpec() traffic.Spec {
	t := spec.Traffic
	if t == nil {
		t = []traffic.Target{{LatestRevision: true, Percent: 100}}
	}
	return traffic.Spec{Traffic: t, RolloutDuration: spec.RolloutDuration}
}

// service is one Service's bookkeeping.
type service struct {
	name  string
	conf  *revision.Configuration
	route *traffic.Route

	mu      sync.Mutex // serialises Apply, Delete and route updates
	spec    traffic.Spec
	routeOK error // the last route update's error
	deleted bool
	kn      *knMeta // the Knative manifest last applied (ApplyKnative), or nil
}

// Apply creates the service spec.Name or updates it: a changed template
// stamps and deploys a new revision, which receives traffic per
// spec.Traffic once its first instance is ready (the revisions serving
// now keep serving until then, so an update fails no request). Requests
// to a new service wait for its first revision (where Knative answers
// 404 until it is ready). The returned status is the service's right
// after the change.
//
// Every invalid field is reported at once, named; an invalid spec
// changes nothing.
func (s *Server) Apply(ctx context.Context, spec ServiceSpec) (ServiceStatus, error) {
	tspec := spec.trafficSpec()
	var errs []error
	if err := spec.Template.Validate(); err != nil {
		errs = append(errs, err)
	}
	if p, err := s.o.Config.Resolve(spec.Template); err != nil && len(errs) == 0 {
		errs = append(errs, err)
	} else if _, ok := s.ctl.Backend().(backend.Freezer); err == nil && p.IdleMode == revision.IdleModeFreeze && !ok {
		// Refused before anything changes, as Add would after.
		errs = append(errs, control.ErrCannotFreeze)
	} else if _, ok := s.ctl.Backend().(backend.Reserver); err == nil && p.IdleMode == revision.IdleModeReserve && !ok {
		errs = append(errs, control.ErrCannotReserve)
	}
	if err := tspec.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return ServiceStatus{}, fmt.Errorf("zeroscale: service %q: %w", spec.Name, errors.Join(errs...))
	}
	svc, isNew, err := s.service(spec.Name)
	if err != nil {
		return ServiceStatus{}, err
	}

	svc.mu.Lock()
	if svc.deleted {
		svc.mu.Unlock()
		return ServiceStatus{}, fmt.Errorf("%w: %q was deleted while being applied", ErrServiceNotFound, spec.Name)
	}
	if err := s.checkRevisionOwner(spec.RevisionName, svc); err != nil {
		svc.mu.Unlock()
		if isNew {
			s.forget(svc)
		}
		return ServiceStatus{}, err
	}
	rev, created, err := svc.conf.Update(spec.Template, spec.RevisionName)
	if err != nil {
		svc.mu.Unlock()
		if isNew {
			s.forget(svc)
		}
		return ServiceStatus{}, fmt.Errorf("zeroscale: service %q: %w", spec.Name, err)
	}
	if err := s.checkRevisionOwner(rev.Name(), svc); created && err != nil {
		// A generated name that another service's revision already has
		// ("a" named one "a-b-00001"; this is "a-b"'s first).
		_ = svc.conf.MarkFailed(rev.Name(), err.Error())
		svc.mu.Unlock()
		if isNew {
			s.forget(svc)
		}
		return ServiceStatus{}, err
	}
	if created {
		s.emit(Event{Kind: EventRevisionCreated, Service: svc.name, Revision: rev.Name()})
		if err := s.startRevision(ctx, svc, rev); err != nil {
			_ = svc.conf.MarkFailed(rev.Name(), err.Error())
			s.setPending(svc)
			s.emit(Event{Kind: EventRevisionFailed, Service: svc.name, Revision: rev.Name(), Reason: ReasonDeployFailed, Message: err.Error()})
			svc.mu.Unlock()
			return s.serviceStatus(svc), fmt.Errorf("zeroscale: service %q: revision %s: %w", spec.Name, rev.Name(), err)
		}
	}
	svc.spec = tspec
	s.updateRoute(svc)
	svc.mu.Unlock()
	return s.serviceStatus(svc), nil
}

// service returns the service called name, creating it (and its route)
// if needed.
func (s *Server) service(name string) (svc *service, created bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, ErrServerClosed
	}
	if svc := s.services[name]; svc != nil {
		return svc, false, nil
	}
	conf, err := revision.NewConfiguration(name, s.o.Clock)
	if err != nil {
		return nil, false, fmt.Errorf("zeroscale: ServiceSpec.Name: %w", err)
	}
	route, err := traffic.NewRoute(traffic.RouteConfig{
		Name:             name,
		Namespace:        s.o.Namespace,
		Domain:           s.o.Domain,
		TagHeaderRouting: true,
		Clock:            s.o.Clock,
		Logger:           s.o.Logger.With("service", name),
	})
	if err != nil {
		return nil, false, fmt.Errorf("zeroscale: service %q: %w", name, err)
	}
	if err := s.table.Add(route); err != nil {
		return nil, false, fmt.Errorf("zeroscale: service %q: %w", name, err)
	}
	svc = &service{name: name, conf: conf, route: route}
	s.services[name] = svc
	return svc, true, nil
}

// checkRevisionOwner fails when another service than svc runs a
// revision called name: revision names are unique across services, as
// in a Knative namespace, since requests, status and deletes find a
// revision by its name.
func (s *Server) checkRevisionOwner(name string, svc *service) error {
	if name == "" {
		return nil
	}
	v, ok := s.revs.Load(name)
	if !ok || v.(*rev).svc == svc {
		return nil
	}
	return fmt.Errorf("zeroscale: service %q: %w: revision name %q is taken by service %q",
		svc.name, revision.ErrNameInUse, name, v.(*rev).svc.name)
}

// forget drops a service that never got a revision.
func (s *Server) forget(svc *service) {
	s.mu.Lock()
	if s.services[svc.name] == svc {
		delete(s.services, svc.name)
	}
	s.mu.Unlock()
	s.table.Remove(svc.route)
}

func (s *Server) hasService(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.services[name] != nil
}

// startRevision claims the revision's name for svc and has the
// Controller run it (deploy, watch, scale; rolled back if a step fails).
func (s *Server) startRevision(ctx context.Context, svc *service, r revision.Revision) error {
	name := r.Name()
	rv := &rev{svc: svc}
	// Claim the name before the engine hears of it: of two services
	// applying the same name at once, one deploys it.
	if v, taken := s.revs.LoadOrStore(name, rv); taken {
		return fmt.Errorf("%w: revision name %q is taken by service %q", revision.ErrNameInUse, name, v.(*rev).svc.name)
	}
	if err := s.ctl.Add(ctx, r); err != nil {
		s.revs.Delete(name)
		return err
	}
	return nil
}

// Delete removes the service: its hosts answer 404 at once, requests in
// flight finish (instances drain before they stop), requests still held
// for an instance are answered 503, and every revision is removed from
// the backend. It returns once that is done or ctx ends.
func (s *Server) Delete(ctx context.Context, name string) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return ErrServerClosed
	}
	return s.deleteService(ctx, name)
}

func (s *Server) deleteService(ctx context.Context, name string) error {
	s.mu.Lock()
	svc := s.services[name]
	delete(s.services, name)
	s.mu.Unlock()
	if svc == nil {
		return fmt.Errorf("%w: %q", ErrServiceNotFound, name)
	}
	svc.mu.Lock()
	svc.deleted = true
	s.table.Remove(svc.route)
	revs := svc.conf.Revisions()
	svc.mu.Unlock()

	var wg sync.WaitGroup
	errs := make([]error, len(revs))
	for i, r := range revs {
		wg.Go(func() { errs[i] = s.removeRevision(ctx, svc, r.Name()) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// removeRevision has the Controller stop svc's revision called name (no
// more decisions, its instances drained and stopped, then forgotten by
// the activator). A revision of that name that another service runs is
// left alone.
func (s *Server) removeRevision(ctx context.Context, svc *service, name string) error {
	v, ok := s.revs.Load(name)
	if !ok || v.(*rev).svc != svc {
		return nil
	}
	v.(*rev).removing.Store(true)
	err := s.ctl.Remove(ctx, name)
	if errors.Is(err, control.ErrUnknownRevision) {
		err = nil
	}
	s.revs.Delete(name)
	if err != nil {
		return fmt.Errorf("zeroscale: remove revision %s: %w", name, err)
	}
	return nil
}

// setPending tells svc's route which revision a request gets while the
// route has no traffic yet: traffic.PendingRevision, once the revision
// is registered with svc.
func (s *Server) setPending(svc *service) {
	name := traffic.PendingRevision(svc.conf)
	if v, ok := s.revs.Load(name); !ok || v.(*rev).svc != svc {
		name = ""
	}
	svc.route.SetPending(name)
}

// updateRoute re-resolves svc's traffic against every service's
// revisions and updates which revisions are reachable. svc.mu is held.
func (s *Server) updateRoute(svc *service) {
	s.setPending(svc)
	if svc.deleted || svc.spec.Traffic == nil {
		return
	}
	before := svc.route.Traffic()
	svc.routeOK = svc.route.Update(svc.spec, s.revisionState())
	after := svc.route.Traffic()
	if !before.Equal(after) {
		s.emit(Event{Kind: EventTrafficChanged, Service: svc.name, Message: formatSplit(after.Default)})
	}
	s.setReachability(svc)
}

// revisionState snapshots every service's Configuration for route
// resolution (a target may follow another service's configuration).
func (s *Server) revisionState() traffic.Configurations {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := make(traffic.Configurations, len(s.services))
	for name, svc := range s.services {
		m[name] = svc.conf
	}
	return m
}

// setReachability tells the autoscaler which of svc's revisions a route
// sends traffic to. The latest created revision counts as reachable
// until routed (Knative's "pending" routing state), so its initial
// scale applies and it can become ready.
func (s *Server) setReachability(svc *service) {
	routed := routedRevisions(svc.route.Traffic())
	latest, _ := svc.conf.LatestCreated()
	for _, r := range svc.conf.Revisions() {
		name := r.Name()
		if _, ok := s.revs.Load(name); !ok {
			continue
		}
		_ = s.ctl.Autoscaler().SetReachable(name, routed[name] || name == latest.Name())
	}
}

// sortedServices returns the services, by name.
func (s *Server) sortedServices() []*service {
	s.mu.Lock()
	svcs := slices.Collect(maps.Values(s.services))
	s.mu.Unlock()
	slices.SortFunc(svcs, func(a, b *service) int { return strings.Compare(a.name, b.name) })
	return svcs
}

// routedRevisions returns the revisions t sends requests to, by the
// default split or a tag.
func routedRevisions(t traffic.Traffic) map[string]bool {
	m := make(map[string]bool)
	for _, sp := range t.Default {
		m[sp.Revision] = true
	}
	for _, splits := range t.Tags {
		for _, sp := range splits {
			m[sp.Revision] = true
		}
	}
	return m
}

// formatSplit renders a split as "hello-00001 90 %, hello-00002 10 %".
func formatSplit(splits []traffic.Split) string {
	if len(splits) == 0 {
		return "none"
	}
	parts := make([]string, len(splits))
	for i, sp := range splits {
		parts[i] = fmt.Sprintf("%s %d %%", sp.Revision, sp.Percent)
	}
	return strings.Join(parts, ", ")
}

// reconcileLoop catches what no event announces: a gradual rollout
// moving traffic (reachability follows it) and a route that could not be
// resolved (retried).
func (s *Server) reconcileLoop(ctx context.Context) {
	t := s.o.Clock.NewTicker(autoscaler.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
		}
		for _, svc := range s.sortedServices() {
			svc.mu.Lock()
			if svc.routeOK != nil {
				s.updateRoute(svc)
			} else if !svc.deleted {
				s.setReachability(svc)
			}
			svc.mu.Unlock()
		}
	}
}

// emit logs e and queues it for Options.OnEvent. It never blocks, so
// it may be called with locks held.
func (s *Server) emit(e Event) {
	if e.Time.IsZero() {
		e.Time = s.o.Clock.Now()
	}
	s.o.Logger.Info(e.String(), "event", e.Kind.String(), "service", e.Service, "revision", e.Revision)
	if s.o.OnEvent == nil {
		return
	}
	s.evMu.Lock()
	if len(s.events) < MaxQueuedEvents {
		s.events = append(s.events, e)
	} else {
		s.dropped++
	}
	s.evMu.Unlock()
	select {
	case s.evWake <- struct{}{}:
	default:
	}
}

// dispatchEvents calls Options.OnEvent with each queued event, in order,
// from this one goroutine, so the hook may call any Server method. At
// Shutdown it delivers what is left.
func (s *Server) dispatchEvents(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			s.deliverEvents()
			return
		case <-s.evWake:
			s.deliverEvents()
		}
	}
}

func (s *Server) deliverEvents() {
	for {
		s.evMu.Lock()
		batch, dropped := s.events, s.dropped
		s.events, s.dropped = nil, 0
		s.evMu.Unlock()
		if dropped > 0 {
			s.o.Logger.Warn("Options.OnEvent falls behind: events dropped", "dropped", dropped, "max_queued", MaxQueuedEvents)
		}
		if len(batch) == 0 {
			return
		}
		for _, e := range batch {
			s.o.OnEvent(e)
		}
	}
}
