package traffic

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/template"
	"time"

	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/revision"
)

// Defaults of RouteConfig, Knative's config-network and config-domain
// values.
const (
	DefaultDomainTemplate = "{{.Name}}.{{.Namespace}}.{{.Domain}}"
	DefaultTagTemplate    = "{{.Tag}}-{{.Name}}"
	DefaultNamespace      = "default"
	DefaultDomain         = "example.com"
	// ClusterLocalDomain is the domain of cluster-local routes, as
	// Knative's "svc.cluster.local".
	ClusterLocalDomain = "svc.cluster.local"
)

// TagHeader is the request header that picks a tag's target when a
// route enables header routing (Knative's tag-header-based-routing).
const TagHeader = "Knative-Serving-Tag"

// DefaultRouteHeader ("true") marks a request that went to the default
// split while TagHeaderRouting is on, as Knative's ingress marks it, so
// the app can tell it from one its TagHeader routed.
const DefaultRouteHeader = "Knative-Serving-Default-Route"

// ErrNoRoute means no route serves the request: its host is unknown, the
// route has no resolved traffic yet, or it is cluster-local and the
// request did not come in on the internal listener. An activator answers
// 404, as Knative's ingress does for an unknown host.
var ErrNoRoute = errors.New("traffic: no route")

// Visibility says on which listeners a route is reachable.
type Visibility int

const (
	// VisibilityExternal routes are reachable on every listener.
	VisibilityExternal Visibility = iota
	// VisibilityClusterLocal routes are reachable only by requests whose
	// context is marked with WithClusterLocal (Knative's
	// networking.knative.dev/visibility: cluster-local).
	VisibilityClusterLocal
)

func (v Visibility) String() string {
	if v == VisibilityClusterLocal {
		return "cluster-local"
	}
	return "external"
}

type clusterLocalKey struct{}

// WithClusterLocal marks ctx as a request that came in on the internal
// (cluster-local) listener, the only one on which cluster-local routes
// are reachable. Set it for every request of that listener, e.g.
//
//	internal := &http.Server{Handler: h, BaseContext: func(net.Listener) context.Context {
//		return traffic.WithClusterLocal(context.Background())
//	}}
func WithClusterLocal(ctx context.Context) context.Context {
	return context.WithValue(ctx, clusterLocalKey{}, true)
}

// isClusterLocal reports whether ctx was marked by WithClusterLocal.
func isClusterLocal(ctx context.Context) bool {
	v, _ := ctx.Value(clusterLocalKey{}).(bool)
	return v
}

// RouteConfig is a route's identity and how its hosts are built. The
// zero value of every field but Name has a default.
type RouteConfig struct {
	// Name of the route, a DNS-1035 label; also the configuration a
	// latestRevision target without ConfigurationName follows.
	Name string
	// Namespace, a DNS-1123 label; "" means DefaultNamespace.
	Namespace string
	// Domain the hosts live under; "" means DefaultDomain, or
	// ClusterLocalDomain for a cluster-local route.
	Domain string
	// DomainTemplate builds a host from {{.Name}} (the route's name, or
	// a tag's name from TagTemplate), {{.Namespace}} and {{.Domain}}; ""
	// means DefaultDomainTemplate. It must depend on .Name.
	DomainTemplate string
	// TagTemplate builds a tag's name from {{.Tag}} and {{.Name}}; ""
	// means DefaultTagTemplate. It must depend on both.
	TagTemplate string
	// Visibility; the zero value is VisibilityExternal.
	Visibility Visibility
	// TagHeaderRouting lets requests on the route's own host pick a
	// tag's target with the TagHeader header. Off by default, as in
	// Knative.
	TagHeaderRouting bool
	// Clock stamps Update (rollout start); nil means the real clock.
	Clock clock.PassiveClock
	// Logger gets rollout progress; nil discards.
	Logger *slog.Logger
}

type domainValues struct{ Name, Namespace, Domain string }
type tagValues struct{ Name, Tag string }

// Route routes requests to revisions by host, tag and weighted split.
// It serves its own host and its tags' hosts; see PickRevision. Update
// sets its traffic; Step advances a gradual rollout. Picks are lock-free
// and safe concurrently with Update and Step, which swap the routing
// snapshot atomically.
type Route struct {
	name, namespace, domain string
	host                    string
	domainTmpl, tagTmpl     *template.Template
	visibility              Visibility
	headerRouting           bool
	clock                   clock.PassiveClock
	log                     *slog.Logger

	mu       sync.Mutex // serializes Update and Step
	targets  []resolved
	duration time.Duration
	rollouts map[rolloutKey]*rollout
	next     time.Time // when a rollout step is due; zero if none

	current atomic.Pointer[snapshot]
	pending atomic.Pointer[string] // see SetPending

	tablesMu sync.Mutex // guards tables only; never held while taking another lock
	tables   []*Table
}

// snapshot is what a pick reads: immutable but for the pickers' counters.
type snapshot struct {
	traffic  Traffic
	def      *picker
	tags     map[string]*picker // by tag
	tagHosts map[string]*picker // by host
	hosts    map[string]string  // tag → host
}

// NewRoute returns a route with no traffic yet: it answers ErrNoRoute
// until the first successful Update. The templates are checked here; an
// invalid setting is reported as a *revision.FieldError naming it.
func NewRoute(cfg RouteConfig) (*Route, error) {
	var errs fieldErrors
	if !isDNS1035Label(cfg.Name) {
		errs.add("RouteConfig.Name", "invalid name %q: %s", cfg.Name, dns1035Rule)
	}
	if cfg.Namespace == "" {
		cfg.Namespace = DefaultNamespace
	}
	if !isDNS1123Label(cfg.Namespace) {
		errs.add("RouteConfig.Namespace", "invalid name %q: must be a DNS-1123 label", cfg.Namespace)
	}
	if cfg.Domain == "" {
		cfg.Domain = DefaultDomain
		if cfg.Visibility == VisibilityClusterLocal {
			cfg.Domain = ClusterLocalDomain
		}
	}
	cfg.Domain = strings.ToLower(cfg.Domain)
	if !isDNS1123Subdomain(cfg.Domain) {
		errs.add("RouteConfig.Domain", "invalid domain %q: must be dot-separated DNS-1123 labels", cfg.Domain)
	}
	if cfg.Visibility != VisibilityExternal && cfg.Visibility != VisibilityClusterLocal {
		errs.add("RouteConfig.Visibility", "unknown visibility %d: must be VisibilityExternal or VisibilityClusterLocal", cfg.Visibility)
	}
	domainTmpl := parseTemplate(&errs, "RouteConfig.DomainTemplate", cfg.DomainTemplate, DefaultDomainTemplate,
		domainValues{"a", "b", "c.d"}, domainValues{"e", "b", "c.d"})
	tagTmpl := parseTemplate(&errs, "RouteConfig.TagTemplate", cfg.TagTemplate, DefaultTagTemplate,
		tagValues{"a", "b"}, tagValues{"a", "c"}, tagValues{"d", "b"})
	if err := errs.err(); err != nil {
		return nil, err
	}
	r := &Route{
		name: cfg.Name, namespace: cfg.Namespace, domain: cfg.Domain,
		domainTmpl: domainTmpl, tagTmpl: tagTmpl,
		visibility: cfg.Visibility, headerRouting: cfg.TagHeaderRouting,
		clock: cfg.Clock, log: cfg.Logger,
	}
	if r.clock == nil {
		r.clock = clock.RealClock{}
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	host, err := r.hostFor(cfg.Name)
	if err != nil {
		return nil, &revision.FieldError{Field: "RouteConfig.DomainTemplate", Message: err.Error()}
	}
	r.host = host
	return r, nil
}

// parseTemplate parses text (or def when empty) and checks that it runs
// and that its output differs across samples, each of which changes one
// value the template must depend on.
func parseTemplate[T any](errs *fieldErrors, field, text, def string, base T, variants ...T) *template.Template {
	if text == "" {
		text = def
	}
	t, err := template.New(field).Parse(text)
	if err != nil {
		errs.add(field, "invalid template %q: %v", text, err)
		return nil
	}
	first, err := execute(t, base)
	if err != nil {
		errs.add(field, "invalid template %q: %v", text, err)
		return nil
	}
	for _, v := range variants {
		if out, err := execute(t, v); err != nil || out == first {
			errs.add(field, "template %q must depend on every value it is given (%+v vs %+v)", text, base, v)
			return nil
		}
	}
	return t
}

func execute(t *template.Template, data any) (string, error) {
	var b strings.Builder
	if err := t.Execute(&b, data); err != nil {
		return "", err
	}
	return b.String(), nil
}

// hostFor builds the host of name (the route's name or a tag's name)
// and checks it is a valid DNS name.
func (r *Route) hostFor(name string) (string, error) {
	h, err := execute(r.domainTmpl, domainValues{Name: name, Namespace: r.namespace, Domain: r.domain})
	if err != nil {
		return "", err
	}
	h = strings.ToLower(h)
	if !isDNS1123Subdomain(h) {
		return "", fmt.Errorf("host %q is not a valid DNS name (dot-separated DNS-1123 labels, at most 253 characters)", h)
	}
	return h, nil
}

func (r *Route) tagHost(tag string) (string, error) {
	name, err := execute(r.tagTmpl, tagValues{Name: r.name, Tag: tag})
	if err != nil {
		return "", err
	}
	return r.hostFor(name)
}

// Name returns the route's name.
func (r *Route) Name() string { return r.name }

// Namespace returns the route's namespace.
func (r *Route) Namespace() string { return r.namespace }

// Host returns the route's own host, e.g. "shop.prod.example.com".
func (r *Route) Host() string { return r.host }

// Visibility returns the route's visibility.
func (r *Route) Visibility() Visibility { return r.visibility }

// TagHosts returns the host of each tag of the current traffic, e.g.
// "v2" → "v2-shop.prod.example.com", in a new map.
func (r *Route) TagHosts() map[string]string {
	if s := r.current.Load(); s != nil {
		return maps.Clone(s.hosts)
	}
	return map[string]string{}
}

// Traffic returns the traffic the route serves now, gradual rollout
// included. It is the zero Traffic before the first successful Update.
func (r *Route) Traffic() Traffic {
	s := r.current.Load()
	if s == nil {
		return Traffic{}
	}
	tr := Traffic{Default: append([]Split(nil), s.traffic.Default...)}
	if s.traffic.Tags != nil {
		tr.Tags = make(map[string][]Split, len(s.traffic.Tags))
		for tag, split := range s.traffic.Tags {
			tr.Tags[tag] = append([]Split(nil), split...)
		}
	}
	return tr
}

// Update validates spec, resolves it against state and makes it the
// route's traffic. A configuration whose latest ready revision changed
// rolls out gradually when spec.RolloutDuration is positive (see Step);
// otherwise the new traffic applies at once.
//
// On error nothing changes and the route keeps serving its previous
// traffic: the error is a validation error (*revision.FieldError) or a
// *TargetError listing the missing and unready targets. Call Update
// again whenever the spec or revision readiness changes.
func (r *Route) Update(spec Spec, state RevisionState) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	hosts := make(map[string]string)
	var errs fieldErrors
	for i, t := range spec.Traffic {
		if t.Tag == "" {
			continue
		}
		h, err := r.tagHost(t.Tag)
		if err != nil {
			errs.add(fmt.Sprintf("traffic[%d].tag", i), "%v", err)
		}
		hosts[t.Tag] = h
	}
	if err := errs.err(); err != nil {
		return err
	}
	targets, err := resolve(spec.Traffic, r.name, state)
	if err != nil {
		return err
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.targets, r.duration = targets, spec.RolloutDuration
	r.apply(r.clock.Now(), hosts, true)
	return nil
}

// Step advances gradual rollouts due at now and returns when it should
// be called next, or the zero time when no rollout is in progress. A
// Table's Run calls it for every route it holds; a route used alone
// needs its own caller.
func (r *Route) Step(now time.Time) time.Time { return r.step(now, true) }

func (r *Route) step(now time.Time, notify bool) time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.targets == nil {
		return time.Time{}
	}
	return r.apply(now, nil, notify)
}

// apply advances the rollouts at now and publishes the resulting
// traffic if it changed. hosts are the tag hosts; nil keeps the current
// ones. notify tells r's tables about changes. r.mu is held.
func (r *Route) apply(now time.Time, hosts map[string]string, notify bool) time.Time {
	ros, next := advance(r.rollouts, goals(r.targets), now, r.duration)
	r.logRollouts(ros)
	r.rollouts = ros
	tr := buildTraffic(r.targets, ros)

	old := r.current.Load()
	if hosts == nil && old != nil {
		hosts = old.hosts
	}
	hostsChanged := old == nil || !maps.Equal(hosts, old.hosts)
	nextChanged := !next.Equal(r.next)
	r.next = next
	if old != nil && !hostsChanged && old.traffic.Equal(tr) {
		// Keep the pickers, and so their counters' exact proportions.
		if nextChanged && notify {
			r.notify(false)
		}
		return next
	}
	s := &snapshot{traffic: tr, def: newPicker(tr.Default), hosts: hosts,
		tags: make(map[string]*picker, len(tr.Tags)), tagHosts: make(map[string]*picker, len(tr.Tags))}
	for tag, split := range tr.Tags {
		p := newPicker(split)
		p.tag = []string{tag}[:1:1]
		s.tags[tag] = p
		s.tagHosts[hosts[tag]] = p
	}
	r.current.Store(s)
	if notify || hostsChanged {
		r.notify(hostsChanged)
	}
	return next
}

// logRollouts reports rollouts that started, stepped or finished.
func (r *Route) logRollouts(ros map[rolloutKey]*rollout) {
	if !r.log.Enabled(context.Background(), slog.LevelInfo) {
		return
	}
	for k, ro := range ros {
		prev, ok := r.rollouts[k]
		switch {
		case !ok || slices.Equal(prev.revs, ro.revs):
		case len(ro.revs) == 1:
			r.log.Info("rollout done", "route", r.namespace+"/"+r.name, "tag", k.tag,
				"configuration", k.config, "revision", ro.revs[0].Revision)
		default:
			r.log.Info("rollout step", "route", r.namespace+"/"+r.name, "tag", k.tag,
				"configuration", k.config, "shares", ro.revs, "next", ro.next)
		}
	}
}

// notify tells the tables holding r that its traffic changed, so that
// they re-index its tag hosts and reschedule their rollout driver.
func (r *Route) notify(hostsChanged bool) {
	r.tablesMu.Lock()
	tables := append([]*Table(nil), r.tables...)
	r.tablesMu.Unlock()
	for _, t := range tables {
		t.changed(hostsChanged)
	}
}

// PickRevision returns the revision that should serve req. A request
// for one of the route's tag hosts goes to that tag's target; with
// TagHeaderRouting, a TagHeader naming a known tag does too; anything
// else gets the weighted default split, whatever its host (a Route used
// alone is the route for whatever reaches it; a Table dispatches by
// host). The host's case and port are ignored.
//
// It marks req for the app as Knative's ingress does: a request for a
// tag host gets TagHeader set to the tag; with TagHeaderRouting, one the
// default split serves gets DefaultRouteHeader "true" (a client's copy
// is removed from tag-routed requests).
//
// The error wraps ErrNoRoute before the first successful Update, and for
// a cluster-local route when req's context is not marked with
// WithClusterLocal. PickRevision does not allocate.
func (r *Route) PickRevision(req *http.Request) (string, error) {
	var buf [maxHost]byte
	return r.pick(req, hostKey(buf[:0], req), false)
}

// SetPending names the revision that requests to the route's own host
// (through a Table; any host, for a Route used alone) get while the route has no default traffic yet (before its first
// successful Update, or while none of its targets is ready): the
// revision being started, which such a request then waits for like a
// request at zero (where Knative answers 404 until the route is ready).
// "" clears it. Tag hosts are not affected. Safe for concurrent use
// with PickRevision.
func (r *Route) SetPending(revision string) {
	if revision == "" {
		r.pending.Store(nil)
		return
	}
	r.pending.Store(&revision)
}

// PendingRevision is the revision a route of configuration c serves
// while it has no ready traffic yet (see Route.SetPending): c's latest
// ready revision, else its latest created one unless that failed, so a
// request to a new service waits for its first revision. "" when there
// is none.
func PendingRevision(c *revision.Configuration) string {
	if r, ok := c.LatestReady(); ok {
		return r.Name()
	}
	r, ok := c.LatestCreated()
	if !ok {
		return ""
	}
	if st, _, err := c.State(r.Name()); err != nil || st == revision.StateFailed {
		return ""
	}
	return r.Name()
}

// pick picks for req, whose normalized host is host. strict (the
// Table's dispatch) refuses a host that is no longer one of the route's.
func (r *Route) pick(req *http.Request, host []byte, strict bool) (string, error) {
	if r.visibility == VisibilityClusterLocal && !isClusterLocal(req.Context()) {
		return "", fmt.Errorf("%w: route %s/%s is cluster-local", ErrNoRoute, r.namespace, r.name)
	}
	s := r.current.Load()
	if s == nil || len(s.traffic.Default) == 0 {
		if p := r.pending.Load(); p != nil && (!strict || string(host) == r.host) {
			return *p, nil
		}
	}
	if s == nil {
		return "", fmt.Errorf("%w: route %s/%s has no ready traffic yet", ErrNoRoute, r.namespace, r.name)
	}
	if p, ok := s.tagHosts[string(host)]; ok {
		if req.Header != nil { // nil only for a request built by hand
			req.Header[TagHeader] = p.tag
			delete(req.Header, DefaultRouteHeader)
		}
		return p.pick(), nil
	}
	if strict && string(host) != r.host {
		return "", fmt.Errorf("%w: host %q", ErrNoRoute, string(host))
	}
	if r.headerRouting {
		if v := req.Header[TagHeader]; len(v) > 0 {
			if p, ok := s.tags[v[0]]; ok {
				delete(req.Header, DefaultRouteHeader)
				return p.pick(), nil
			}
		}
		if req.Header != nil {
			req.Header[DefaultRouteHeader] = defaultRouteValue
		}
	}
	return s.def.pick(), nil
}

// defaultRouteValue is DefaultRouteHeader's value, shared by every
// request (capacity one: an append copies it).
var defaultRouteValue = []string{"true"}[:1:1]

// maxHost is the longest DNS name; longer hosts match nothing.
const maxHost = 253

// hostKey appends req's host to buf, lower-cased, without port or
// trailing dot, for a map lookup that does not allocate.
func hostKey(buf []byte, req *http.Request) []byte {
	h := req.Host
	if h == "" && req.URL != nil {
		h = req.URL.Host
	}
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.TrimSuffix(h, ".")
	if len(h) > maxHost {
		return buf
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf = append(buf, c)
	}
	return buf
}
