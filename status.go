package zeroscale

import (
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// ConditionType names one aspect of health a Condition reports.
type ConditionType string

// ConditionStatus is a Condition's verdict: True, False or Unknown.
type ConditionStatus string

// Reason is a short CamelCase word saying why a Condition or an Event is
// what it is (Knative's reasons where Knative has one).
type Reason string

// Condition statuses, Knative's.
const (
	ConditionTrue    ConditionStatus = "True"
	ConditionFalse   ConditionStatus = "False"
	ConditionUnknown ConditionStatus = "Unknown"
)

// Condition types of ServiceStatus and RevisionStatus.
const (
	// ConditionReady: a service's route serves a resolved split; a
	// revision has had a ready instance (or starts at zero).
	ConditionReady ConditionType = "Ready"
	// ConditionActive: the revision has the instances its demand needs.
	// False with ReasonNoTraffic when idle (at or going to zero),
	// Unknown with ReasonActivating while requests wait for instances.
	ConditionActive ConditionType = "Active"
	// ConditionContainerHealthy: False with ReasonCrashLoop while an
	// instance keeps crashing, Unknown with ReasonStarting while
	// instances start and none passed its readiness probe yet (engines
	// that are a backend.StatusReporter).
	ConditionContainerHealthy ConditionType = "ContainerHealthy"
)

// Reasons of Conditions and Events.
const (
	ReasonNoTraffic       Reason = autoscaler.ReasonNoTraffic
	ReasonActivating      Reason = "Activating"
	ReasonTimedOut        Reason = autoscaler.ReasonTimedOut
	ReasonCrashLoop       Reason = "CrashLoop"
	ReasonStarting        Reason = "Starting"
	ReasonDeploying       Reason = "Deploying"
	ReasonFailed          Reason = "Failed"
	ReasonRevisionMissing Reason = "RevisionMissing"
	// ReasonDeleted: the service's Ready is False while Delete removes it.
	ReasonDeleted Reason = "Deleted"
	// ReasonDeployFailed: the backend refused to deploy the revision
	// (EventRevisionFailed).
	ReasonDeployFailed Reason = "DeployFailed"
	// ReasonFrozen: Active is False because the revision's instances
	// are frozen (zeroscale.dev/idle-mode: freeze); a request thaws
	// them.
	ReasonFrozen Reason = "Frozen"
)

// Condition is one aspect of a service's or revision's health, as in
// Knative's status.
type Condition struct {
	Type    ConditionType   `json:"type"`
	Status  ConditionStatus `json:"status"`
	Reason  Reason          `json:"reason,omitempty"`
	Message string          `json:"message,omitempty"`
}

// ServiceStatus is a service as the Server sees it now.
type ServiceStatus struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
	// URL is where the service answers, e.g.
	// http://hello.default.localhost:8080.
	URL                   string `json:"url"`
	LatestCreatedRevision string `json:"latestCreatedRevision,omitempty"`
	LatestReadyRevision   string `json:"latestReadyRevision,omitempty"`
	// Traffic is the split served now (gradual rollout included), and
	// each tag's target with its own URL.
	Traffic    []TrafficStatus  `json:"traffic"`
	Revisions  []RevisionStatus `json:"revisions"`
	Conditions []Condition      `json:"conditions"`
}

// TrafficStatus is one entry of the traffic a service serves now (its
// spec's entries are traffic.Target).
type TrafficStatus struct {
	Revision string `json:"revisionName"`
	Percent  int    `json:"percent"`
	Tag      string `json:"tag,omitempty"`
	URL      string `json:"url,omitempty"`
}

// RevisionStatus is one revision of a service.
type RevisionStatus struct {
	Name       string    `json:"name"`
	Generation int64     `json:"generation"`
	Created    time.Time `json:"created"`
	// Percent is its share of the service's default traffic.
	Percent int `json:"percent"`
	// RequestedScale is the Scale of the autoscaler's last decision, what
	// the engine is asked to run (-1 before any); AppliedScale what the
	// engine last accepted (-1 before any): the requested scale, or
	// InstanceCap when that is lower; ActualScale the serving instances;
	// Instances all of them, starting and draining included.
	RequestedScale int `json:"requestedScale"`
	AppliedScale   int `json:"appliedScale"`
	// InstanceCap is the backend's cap of instances per revision when
	// the requested scale is above it, 0 otherwise.
	InstanceCap int `json:"instanceCap,omitempty"`
	ActualScale int `json:"actualScale"`
	Instances   int `json:"instances"`
	// Reserved counts the serving reserved instances (idle-mode
	// reserve; ActualScale includes them): 1 while the cheaper stand-in
	// for zero serves, 0 otherwise.
	Reserved  int  `json:"reserved,omitempty"`
	Panicking bool `json:"panicking,omitempty"`
	// Held are requests waiting in the activator for an instance;
	// InFlight those being proxied to one.
	Held     int `json:"held"`
	InFlight int `json:"inFlight"`
	// Frozen: its instances are frozen instead of stopped
	// (zeroscale.dev/idle-mode: freeze) until a request thaws them or
	// the standby retention stops them.
	Frozen bool `json:"frozen,omitempty"`
	// ScaleError is the backend's last refusal of a scale, if any.
	ScaleError string      `json:"scaleError,omitempty"`
	Conditions []Condition `json:"conditions"`
}

// Condition returns the condition of type t, and whether it is set.
func (r RevisionStatus) Condition(t ConditionType) (Condition, bool) {
	return findCondition(r.Conditions, t)
}

// Condition returns the condition of type t, and whether it is set.
func (s ServiceStatus) Condition(t ConditionType) (Condition, bool) {
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

// Status returns every service's status, by name.
func (s *Server) Status() []ServiceStatus {
	svcs := s.sortedServices()
	out := make([]ServiceStatus, len(svcs))
	for i, svc := range svcs {
		out[i] = s.serviceStatus(svc)
	}
	return out
}

// ServiceStatus returns the status of the service called name.
func (s *Server) ServiceStatus(name string) (ServiceStatus, error) {
	s.mu.Lock()
	svc := s.services[name]
	s.mu.Unlock()
	if svc == nil {
		return ServiceStatus{}, fmt.Errorf("%w: %q", ErrServiceNotFound, name)
	}
	return s.serviceStatus(svc), nil
}

// url returns the http URL of host on the data listener's port.
func (s *Server) url(host string) string {
	port := ""
	s.mu.Lock()
	if s.dataPort != "" && s.dataPort != "80" {
		port = ":" + s.dataPort
	}
	s.mu.Unlock()
	return "http://" + host + port
}

// setDataPort records the port of the first data listener for URLs.
func (s *Server) setDataPort(addr net.Addr) {
	_, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.dataPort == "" {
		s.dataPort = port
	}
	s.mu.Unlock()
}

func (s *Server) serviceStatus(svc *service) ServiceStatus {
	svc.mu.Lock()
	routeErr, deleted := svc.routeOK, svc.deleted
	svc.mu.Unlock()
	st := ServiceStatus{Name: svc.name, Namespace: s.o.Namespace, URL: s.url(svc.route.Host())}
	if r, ok := svc.conf.LatestCreated(); ok {
		st.LatestCreatedRevision = r.Name()
	}
	if r, ok := svc.conf.LatestReady(); ok {
		st.LatestReadyRevision = r.Name()
	}
	t := svc.route.Traffic()
	percent := make(map[string]int)
	for _, sp := range t.Default {
		percent[sp.Revision] = sp.Percent
		st.Traffic = append(st.Traffic, TrafficStatus{Revision: sp.Revision, Percent: sp.Percent})
	}
	hosts := svc.route.TagHosts()
	tags := make([]string, 0, len(t.Tags))
	for tag := range t.Tags {
		tags = append(tags, tag)
	}
	sort.Strings(tags)
	for _, tag := range tags {
		for _, sp := range t.Tags[tag] {
			st.Traffic = append(st.Traffic, TrafficStatus{Revision: sp.Revision, Percent: percent[sp.Revision], Tag: tag, URL: s.url(hosts[tag])})
		}
	}
	revs := svc.conf.Revisions()
	for i := len(revs) - 1; i >= 0; i-- { // newest first, as kubectl lists them
		st.Revisions = append(st.Revisions, s.revisionStatus(svc, revs[i], percent[revs[i].Name()]))
	}
	switch {
	case deleted:
		st.Conditions = append(st.Conditions, Condition{Type: ConditionReady, Status: ConditionFalse, Reason: ReasonDeleted})
	case routeErr != nil:
		status := ConditionUnknown
		if len(t.Default) > 0 {
			status = ConditionTrue // still serving the previous split
		}
		st.Conditions = append(st.Conditions, Condition{Type: ConditionReady, Status: status, Reason: ReasonRevisionMissing, Message: routeErr.Error()})
	case len(t.Default) == 0:
		st.Conditions = append(st.Conditions, Condition{Type: ConditionReady, Status: ConditionUnknown, Reason: ReasonDeploying})
	default:
		st.Conditions = append(st.Conditions, Condition{Type: ConditionReady, Status: ConditionTrue})
	}
	return st
}

func (s *Server) revisionStatus(svc *service, r revision.Revision, percent int) RevisionStatus {
	name := r.Name()
	rs := RevisionStatus{Name: name, Generation: r.Generation(), Created: r.Created(), Percent: percent, RequestedScale: -1, AppliedScale: -1}
	state, reason, _ := svc.conf.State(name)
	switch state {
	case revision.StateReady:
		rs.Conditions = append(rs.Conditions, Condition{Type: ConditionReady, Status: ConditionTrue})
	case revision.StateFailed:
		rs.Conditions = append(rs.Conditions, Condition{Type: ConditionReady, Status: ConditionFalse, Reason: ReasonFailed, Message: reason})
	default:
		rs.Conditions = append(rs.Conditions, Condition{Type: ConditionReady, Status: ConditionUnknown, Reason: ReasonDeploying})
	}
	cs, err := s.ctl.Status(name)
	if err != nil {
		return rs
	}
	d, decided := cs.Decision, cs.Decision.Revision != ""
	rs.ActualScale, rs.Instances, rs.AppliedScale, rs.InstanceCap = cs.Serving, len(cs.Instances), cs.Applied, cs.Cap
	rs.Frozen = cs.Frozen
	for _, in := range cs.Instances {
		if in.Reserved && in.Serving() {
			rs.Reserved++
		}
	}
	if cs.ScaleErr != nil {
		rs.ScaleError = cs.ScaleErr.Error()
	}
	if l, ok := s.ctl.Activator().Load(name); ok {
		rs.Held, rs.InFlight = l.Held, l.InFlight
	}
	if decided {
		rs.RequestedScale, rs.Panicking = d.Scale, d.Panicking
		c := Condition{Type: ConditionActive}
		switch d.State {
		case autoscaler.StateActive:
			c.Status = ConditionTrue
		case autoscaler.StateActivating:
			if d.Scale > 0 && rs.ActualScale >= d.Scale {
				// Ready since the decision; the next tick says Active.
				c.Status = ConditionTrue
				break
			}
			c.Status, c.Reason = ConditionUnknown, ReasonActivating
			c.Message = fmt.Sprintf("%d of %d instances serving", rs.ActualScale, d.Scale)
			// The activator's live count, not the decision's reason: the
			// requests that woke the revision may have left since.
			switch {
			case rs.Held == 1:
				c.Message += "; 1 request is waiting"
			case rs.Held > 1:
				c.Message += fmt.Sprintf("; %d requests are waiting", rs.Held)
			}
		case autoscaler.StateInactive:
			c.Status, c.Reason = ConditionFalse, Reason(d.Reason)
		}
		if cs.Frozen {
			c.Status, c.Reason = ConditionFalse, ReasonFrozen
			c.Message = fmt.Sprintf("%d instances frozen; the next request thaws them", rs.Instances)
		}
		rs.Conditions = append(rs.Conditions, c)
	}
	if sr, ok := s.ctl.Backend().(backend.StatusReporter); ok {
		if ps, err := sr.Status(s.ctx, name); err == nil {
			rs.Conditions = append(rs.Conditions, s.containerHealth(ps))
		}
	}
	return rs
}

// containerHealth is ContainerHealthy from the engine's view: False
// while an instance crash-loops; Unknown while instances start and none
// has passed its readiness probe yet (an app that never listens is not
// healthy until its start timeout says so); True otherwise.
func (s *Server) containerHealth(ps backend.EngineStatus) Condition {
	if loop := ps.CrashLooping(); len(loop) > 0 {
		return Condition{Type: ConditionContainerHealthy, Status: ConditionFalse, Reason: ReasonCrashLoop, Message: crashMessage(loop[0])}
	}
	var starting *backend.InstanceStatus
	for i, in := range ps.Instances {
		switch in.State {
		case backend.InstanceRunning:
			return Condition{Type: ConditionContainerHealthy, Status: ConditionTrue}
		case backend.InstanceStarting:
			if starting == nil {
				starting = &ps.Instances[i]
			}
		}
	}
	if starting != nil {
		msg := fmt.Sprintf("instance %s has not passed its readiness probe yet", starting.ID)
		if !starting.Started.IsZero() {
			msg += fmt.Sprintf(" (started %v ago)", s.o.Clock.Since(starting.Started).Round(time.Millisecond))
		}
		if starting.Restarts > 0 {
			msg += fmt.Sprintf("; restarted %d times", starting.Restarts)
		}
		return Condition{Type: ConditionContainerHealthy, Status: ConditionUnknown, Reason: ReasonStarting, Message: msg}
	}
	return Condition{Type: ConditionContainerHealthy, Status: ConditionTrue}
}

// crashMessage says how an instance last crashed, with its last output.
func crashMessage(in backend.InstanceStatus) string {
	msg := fmt.Sprintf("instance %s restarted %d times", in.ID, in.Restarts)
	if e := in.LastExit; e != nil {
		msg += fmt.Sprintf("; last exit code %d (%s)", e.Code, e.Reason)
		if n := len(e.Output); n > 0 {
			msg += "; last output: " + strings.Join(e.Output[max(0, n-5):], " | ")
		}
	}
	return msg
}
