package zeroscale

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/zeroscale/zeroscale/activator"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/control"
	"github.com/zeroscale/zeroscale/internal/edge"
	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/traffic"
)

// ErrServerClosed is returned by Apply and Delete after Shutdown began.
var ErrServerClosed = errors.New("zeroscale: server closed")

// ErrServiceNotFound is returned for an unknown service (or its route);
// an unknown revision is revision.ErrNotFound.
var ErrServiceNotFound = errors.New("zeroscale: service not found")

// Server runs services that scale to zero: the composition of traffic
// (host-based routing, splits, tags, rollout), activator (the front
// door that holds requests at zero), autoscaler (the KPA loop), one
// in-process queue-proxy per instance and a backend.Backend that runs
// the instances.
//
// Create it with New, add services with Apply, serve requests with Serve
// (or mount Handler), read status with Status or AdminHandler, and stop
// it with Shutdown. All methods are safe for concurrent use.
type Server struct {
	o       Options
	ctl     *control.Controller // owns the revisions' lives
	table   *traffic.Table
	handler http.Handler

	ctx    context.Context // cancelled by Shutdown, after draining
	cancel context.CancelFunc
	wg     sync.WaitGroup

	hist *history // the status page's charts

	revs sync.Map // revision name → *rev (owner, last request); read on every request

	mu       sync.Mutex
	services map[string]*service
	closed   bool
	servers  []*http.Server
	dataPort string // of the first Serve listener, for status URLs

	evMu    sync.Mutex
	events  []Event // queued for Options.OnEvent, at most MaxQueuedEvents
	dropped int
	evWake  chan struct{}
}

// New returns a Server configured by o, with its control loops running
// and no service yet. Call Shutdown to stop it.
func New(o Options) (*Server, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Server{
		o:        o,
		services: make(map[string]*service),
		table:    &traffic.Table{Clock: o.Clock, Logger: o.Logger},
		evWake:   make(chan struct{}, 1),
	}
	if s.o.Registerer == nil {
		s.o.Registerer = newRegistry()
	}
	s.hist = &history{step: cmp.Or(o.historyStep, HistoryStep), rings: map[string]*ring{}}
	o = s.o
	s.ctx, s.cancel = context.WithCancel(context.Background())
	co := control.Options{
		NewBackend:        o.NewBackend,
		NewProxiedBackend: o.NewProxiedBackend,
		Config:            o.Config,
		Autoscaler: autoscaler.Options{
			Registerer: o.Registerer,
			NewDecider: o.NewDecider,
		},
		Activator: activator.Options{
			Picker:         picker{s},
			Secret:         o.ActivatorSecret, // "" = a random one
			WaitTimeout:    o.WaitTimeout,
			TrustedProxies: o.TrustedProxies,
			Registerer:     o.Registerer,
			TracerProvider: o.TracerProvider,
		},
		ScrapeStats: o.ScrapeStats,
		OnEvent:     s.onControlEvent,
		Clock:       o.Clock,
		Logger:      o.Logger,
	}
	if co.NewBackend == nil && co.NewProxiedBackend == nil {
		co.NewProxiedBackend = s.processBackend
	}
	if s.ctl, err = control.New(co); err != nil {
		return nil, fmt.Errorf("zeroscale: %w", err)
	}
	// The front door: bare-host requests name their service by
	// ServiceHeader or path, then the activator routes by host.
	s.handler = &traffic.BareHost{
		Next:      s.ctl.Activator(),
		Table:     s.table,
		Namespace: o.Namespace,
		Domain:    o.Domain,
		Header:    ServiceHeader,
	}

	s.goRun(func(ctx context.Context) { _ = s.ctl.Run(ctx) })
	s.goRun(func(ctx context.Context) { _ = s.table.Run(ctx) })
	s.goRun(s.reconcileLoop)
	s.goRun(s.dispatchEvents)
	s.goRun(s.sampleLoop)
	return s, nil
}

// newRegistry is the Server's own registry when Options.Registerer is
// nil: what a Prometheus user expects of a Go service's /metrics.
func newRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// processBackend is the default Options.NewProxiedBackend: local
// processes, each fronted by an in-process queue-proxy.
func (s *Server) processBackend(drain backend.DrainFunc, qp queueproxy.Options) (backend.Backend, error) {
	po := s.o.Process
	po.Proxy = process.QueueProxy(qp)
	if po.Drain == nil {
		po.Drain = drain
	}
	if po.Logger == nil {
		po.Logger = s.o.Logger.With("component", "process")
	}
	if po.Clock == nil {
		po.Clock = s.o.Clock
	}
	return process.New(po)
}

// goRun runs f on its own goroutine until Shutdown.
func (s *Server) goRun(f func(ctx context.Context)) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f(s.ctx)
	}()
}

// Handler is the Server's data plane: it routes each request by host
// ({{.Name}}.{{.Namespace}}.{{.Domain}}, tag hosts, or the bare domain
// with ServiceHeader or a path prefix) to a revision, holds it while the
// revision scales from zero, and proxies it to an instance. Serve uses
// it; a host program may mount it on its own server instead.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve accepts requests on ln (HTTP/1.1 and h2c) until Shutdown; it
// then returns http.ErrServerClosed. Connections are bounded by
// Options.MaxConns and MaxConnsPerClient, request bodies by BodyTimeout
// and MinBodyRate.
func (s *Server) Serve(ln net.Listener) error {
	s.setDataPort(ln.Addr())
	return s.serve(ln, s.handler)
}

// ServeAdmin serves AdminHandler on ln until Shutdown; it then returns
// http.ErrServerClosed.
//
// It refuses (and closes) a listener that is not loopback unless
// Options.AdminToken is set: the admin API can change every service.
func (s *Server) ServeAdmin(ln net.Listener) error {
	if err := s.checkAdminListener(ln); err != nil {
		_ = ln.Close()
		return err
	}
	return s.serve(ln, s.AdminHandler())
}

// ListenAndServe listens on Options.Addr and Options.AdminAddr and
// serves both until Shutdown, when it returns http.ErrServerClosed; it
// returns at once with the error if either listener fails.
func (s *Server) ListenAndServe() error {
	ln, err := net.Listen("tcp", s.o.Addr)
	if err != nil {
		return fmt.Errorf("zeroscale: listen on Options.Addr: %w", err)
	}
	admin, err := net.Listen("tcp", s.o.AdminAddr)
	if err != nil {
		_ = ln.Close()
		return fmt.Errorf("zeroscale: listen on Options.AdminAddr: %w", err)
	}
	errs := make(chan error, 2)
	go func() { errs <- s.ServeAdmin(admin) }()
	go func() { errs <- s.Serve(ln) }()
	err = <-errs
	if !errors.Is(err, http.ErrServerClosed) {
		_ = ln.Close()
		_ = admin.Close()
	}
	<-errs
	return err
}

// Bounds of the Server's own listeners: slow or idle clients cannot hold
// a connection forever; request deadlines are the revision's timeouts.
const (
	readHeaderTimeout = 30 * time.Second
	idleTimeout       = 120 * time.Second
)

func (s *Server) serve(ln net.Listener, h http.Handler) error {
	h = &edge.Bodies{Handler: h, Timeout: s.o.BodyTimeout, MinRate: int64(s.o.MinBodyRate), Clock: s.o.Clock}
	ln = &edge.Listener{Listener: ln, Max: s.o.MaxConns, MaxPerClient: s.o.MaxConnsPerClient}
	srv := hop.NewServer("", h)
	srv.ReadHeaderTimeout = readHeaderTimeout
	srv.IdleTimeout = idleTimeout
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ln.Close()
		return http.ErrServerClosed
	}
	s.servers = append(s.servers, srv)
	s.mu.Unlock()
	return srv.Serve(ln)
}

// Shutdown stops the Server gracefully: its listeners stop accepting,
// requests in flight (held ones included) finish, every revision is
// drained and removed from the backend (every instance stopped), and the
// control loops end. If ctx ends first, what is left is cut short (the
// process backend then kills its processes) and ctx's error is returned.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	servers := s.servers
	names := make([]string, 0, len(s.services))
	for name := range s.services {
		names = append(names, name)
	}
	s.mu.Unlock()

	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	addErr := func(err error) {
		emu.Lock()
		errs = append(errs, err)
		emu.Unlock()
	}
	for _, srv := range servers {
		wg.Go(func() {
			if err := srv.Shutdown(ctx); err != nil {
				addErr(fmt.Errorf("zeroscale: shutdown listener: %w", err))
			}
		})
	}
	wg.Wait()
	for _, name := range names {
		wg.Go(func() {
			if err := s.deleteService(ctx, name); err != nil && !errors.Is(err, ErrServiceNotFound) {
				addErr(err)
			}
		})
	}
	wg.Wait()
	if err := s.ctl.Shutdown(ctx); err != nil {
		addErr(fmt.Errorf("zeroscale: %w", err))
	}
	s.cancel()
	s.wg.Wait()
	return errors.Join(errs...)
}

// picker is the activator's RevisionPicker: the route table, plus the
// time of each revision's last request (for "NoTraffic for 90 s").
type picker struct{ s *Server }

func (p picker) PickRevision(r *http.Request) (string, error) {
	name, err := p.s.table.PickRevision(r)
	if err != nil {
		return "", err
	}
	if v, ok := p.s.revs.Load(name); ok {
		rv := v.(*rev)
		rv.lastRequest.Store(p.s.o.Clock.Now().UnixNano())
		rv.requests.Add(1)
	}
	return name, nil
}
