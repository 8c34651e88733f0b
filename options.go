package zeroscale

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"k8s.io/utils/clock"

	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/internal/edge"
	"github.com/zeroscale/zeroscale/traffic"
)

// Defaults of Options.
const (
	// LocalDomain, the default Options.Domain, needs no set-up: every
	// name under "localhost" resolves to the loopback address (RFC 6761;
	// curl, browsers and systemd-resolved honour it), so
	// hello.default.localhost reaches a Server listening on 127.0.0.1.
	LocalDomain = "localhost"
	// DefaultAddr and DefaultAdminAddr are ListenAndServe's listeners.
	DefaultAddr      = "127.0.0.1:8080"
	DefaultAdminAddr = "127.0.0.1:8081"
	// ServiceHeader names the service (or "<name>.<namespace>") of a
	// request sent to the bare domain, e.g. "curl -H 'Zeroscale-Service:
	// hello' localhost:8080". Without it, the first path segment of a
	// bare-domain request names the service and is stripped
	// ("localhost:8080/hello/x" reaches hello as "/x").
	ServiceHeader = "Zeroscale-Service"
	// MaxQueuedEvents bounds the events waiting for Options.OnEvent.
	MaxQueuedEvents = 1024
	// DefaultMaxConnsPerClient is Options.MaxConnsPerClient's default.
	DefaultMaxConnsPerClient = 1024
	// DefaultBodyTimeout and DefaultMinBodyRate are Options.BodyTimeout's
	// and MinBodyRate's defaults (Apache's mod_reqtimeout
	// "body=20,MinRate=500").
	DefaultBodyTimeout = 20 * time.Second
	DefaultMinBodyRate = 500
)

// Options configure a Server. The zero value is a working local
// server: processes on this machine, Knative's autoscaling defaults,
// hosts under "localhost".
type Options struct {
	// NewBackend builds the engine that runs the instances. New calls
	// it once with the Server's DrainFunc (which waits until the
	// activator has nothing in flight to the instance), which the engine
	// must call before it stops an instance. The Server owns what it
	// returns: Shutdown removes the Server's revisions from it, then
	// stops it with its Shutdown(ctx) method when it has one, else its
	// Close (io.Closer). nil means a process backend (backend/process)
	// configured by Process, with an in-process queue-proxy in front of
	// every instance.
	NewBackend backend.Factory
	// NewProxiedBackend, set instead of NewBackend, builds an engine
	// that fronts each instance with an in-process queue-proxy, as
	// backend/process and backend/docker do: New calls it once with the
	// DrainFunc and the queue-proxy options every such proxy must be
	// built from (the autoscaler's stats Reporter, the activator's
	// secret, Clock, Logger, TracerProvider), e.g.
	// docker.ServerFactory(docker.Options{}). Ownership as NewBackend.
	NewProxiedBackend control.ProxiedFactory
	// Process configures the default process backend (ignored when
	// NewBackend is set). The Server sets its Proxy, and its Drain,
	// Logger and Clock when they are nil.
	Process process.Options
	// ScrapeStats says the engine runs each instance's queue-proxy out of
	// process, as a sidecar (backend/kubernetes): the autoscaler then
	// scrapes every instance's stats each second (GET
	// http://<Instance.Address>/zeroscale/stat, which cmd/queue-proxy
	// serves) instead of waiting for pushes. The activator still pushes
	// its own. Leave it false for engines with in-process queue-proxies
	// (process, docker).
	ScrapeStats bool
	// ActivatorSecret is the shared secret the activator proves itself
	// with to the queue-proxies, so they count its requests as proxied
	// and honour its probes. "" means a random one per Server, which only
	// in-process queue-proxies learn; give out-of-process sidecars the
	// same value (cmd/queue-proxy's ACTIVATOR_SECRET, e.g. through
	// backend/kubernetes Options.QueueProxyEnv). At least 16 bytes.
	ActivatorSecret string

	// Config is the host-wide autoscaling configuration; the zero value
	// means autoscaler.DefaultConfig().
	Config autoscaler.Config
	// NewDecider builds each revision's scaling policy; nil means the
	// KPA (autoscaler.NewKPA).
	NewDecider autoscaler.DeciderFactory

	// Namespace of every service; "" means traffic.DefaultNamespace
	// ("default").
	Namespace string
	// Domain the service hosts live under, {{.Name}}.{{.Namespace}}.{{.Domain}};
	// "" means LocalDomain (not traffic.DefaultDomain, Knative's
	// "example.com", which needs DNS).
	Domain string
	// Addr and AdminAddr are where ListenAndServe listens for requests
	// and for status; "" means DefaultAddr and DefaultAdminAddr.
	Addr      string
	AdminAddr string
	// AdminToken, when set, is the bearer token every admin request
	// but /healthz must carry ("Authorization: Bearer <token>"); it is
	// required to serve the admin API on a listener that is not
	// loopback. See AdminHandler.
	AdminToken string

	// MaxConns bounds the open connections of each listener Serve and
	// ServeAdmin serve; a connection over it is refused as it is
	// accepted (a best-effort 503, then closed), before it costs a
	// goroutine, so a flood of connections cannot exhaust the process's
	// file descriptors and take every service down. The last eighth is
	// kept for clients holding fewer than 8 connections, so a flood from
	// a few addresses cannot lock everyone else out. 0 means a quarter
	// of the process's open-file limit (RLIMIT_NOFILE), at least 256.
	MaxConns int
	// MaxConnsPerClient bounds one client address's open connections on
	// each listener (an IPv4 address, or an IPv6 /64), so one client
	// cannot take every other's share of MaxConns; refused the same way.
	// 0 means DefaultMaxConnsPerClient. Behind a proxy, or for a local
	// load test, every client has the same address: raise it.
	MaxConnsPerClient int
	// BodyTimeout and MinBodyRate bound how long a request body may take
	// to arrive at Serve's listeners: BodyTimeout plus one second per
	// MinBodyRate bytes received so far, so a client trickling its body
	// cannot stretch it. A body that misses it is answered 408 Request
	// Timeout and its connection closed; while it trickles, the request
	// holds its instance slot, at most until then (and never past the
	// revision's request timeout). 0 means DefaultBodyTimeout and
	// DefaultMinBodyRate (bytes per second).
	BodyTimeout time.Duration
	MinBodyRate int

	// TrustedProxies are the client addresses (a load balancer in
	// front) whose X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host
	// and Forwarded headers reach the app; everyone else's are replaced
	// by the front door's own, so a client cannot make an app believe it
	// came over https, from another address or for another host. nil
	// trusts no one.
	TrustedProxies []netip.Prefix

	// WaitTimeout, when positive, bounds how long a request waits for
	// an instance, instead of the activator's default (Cloud Run's
	// max(3.5 × average start-up, 10 s)).
	WaitTimeout time.Duration

	// OnEvent, when set, receives scaling and revision events (see
	// Event) as they happen, in order, from one goroutine; it may call
	// any Server method. Events wait in a queue of at most
	// MaxQueuedEvents; a hook that falls further behind loses the
	// newest ones (counted in a warning log).
	OnEvent func(Event)

	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer receives the activator's and autoscaler's metrics. nil
	// means a fresh registry of the Server's own (never the global
	// default one), with the Go runtime and process collectors, served
	// by the admin handler at /metrics: metrics are on by default. A
	// Registerer that is also a prometheus.Gatherer is served there too;
	// one that is not (it feeds the host's own registry) is not.
	Registerer prometheus.Registerer
	// TracerProvider traces requests through the activator and the
	// queue-proxies; nil means no tracing.
	TracerProvider trace.TracerProvider
	// Clock drives every component; nil means the real clock.
	Clock clock.WithTickerAndDelayedExecution

	historyStep time.Duration // the status page's HistoryStep; tests shorten it
}

// withDefaults returns o with every zero field filled in, or an error
// naming the first invalid field.
func (o Options) withDefaults() (Options, error) {
	if o.NewBackend != nil && o.NewProxiedBackend != nil {
		return o, errors.New("zeroscale: Options.NewBackend and Options.NewProxiedBackend are both set: set one")
	}
	if o.Config == (autoscaler.Config{}) {
		o.Config = autoscaler.DefaultConfig()
	}
	if err := o.Config.Validate(); err != nil {
		return o, fmt.Errorf("zeroscale: Options.Config: %w", err)
	}
	if o.Namespace == "" {
		o.Namespace = traffic.DefaultNamespace
	}
	if o.Domain == "" {
		o.Domain = LocalDomain
	}
	// Every service's route is built from them: check them once here,
	// with the route's own rules, rather than fail every Apply.
	if _, err := traffic.NewRoute(traffic.RouteConfig{Name: "x", Namespace: o.Namespace, Domain: o.Domain}); err != nil {
		return o, fmt.Errorf("zeroscale: Options.Namespace %q / Options.Domain %q: %w", o.Namespace, o.Domain, err)
	}
	if o.Addr == "" {
		o.Addr = DefaultAddr
	}
	if o.AdminAddr == "" {
		o.AdminAddr = DefaultAdminAddr
	}
	for _, f := range []struct {
		name string
		v    *int
		def  int
	}{
		{"MaxConns", &o.MaxConns, edge.DefaultMaxConns()},
		{"MaxConnsPerClient", &o.MaxConnsPerClient, DefaultMaxConnsPerClient},
		{"MinBodyRate", &o.MinBodyRate, DefaultMinBodyRate},
	} {
		if *f.v < 0 {
			return o, fmt.Errorf("zeroscale: Options.%s %d: must be ≥ 0 (0 = %d)", f.name, *f.v, f.def)
		}
		if *f.v == 0 {
			*f.v = f.def
		}
	}
	if o.BodyTimeout < 0 {
		return o, fmt.Errorf("zeroscale: Options.BodyTimeout %v: must be ≥ 0 (0 = %v)", o.BodyTimeout, DefaultBodyTimeout)
	}
	if o.BodyTimeout == 0 {
		o.BodyTimeout = DefaultBodyTimeout
	}
	if o.ActivatorSecret != "" && len(o.ActivatorSecret) < 16 {
		return o, fmt.Errorf("zeroscale: Options.ActivatorSecret has %d bytes, want at least 16 (or \"\" for a random one)", len(o.ActivatorSecret))
	}
	if o.WaitTimeout < 0 {
		return o, fmt.Errorf("zeroscale: Options.WaitTimeout %v: must be ≥ 0 (0 = the activator's default)", o.WaitTimeout)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = clock.RealClock{}
	}
	return o, nil
}
