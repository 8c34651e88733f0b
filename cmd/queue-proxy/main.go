package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/otel/propagation"

	"github.com/zeroscale/zeroscale/internal/hop"
	"github.com/zeroscale/zeroscale/internal/otelenv"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/stats"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "queue-proxy:", err)
		}
		os.Exit(2)
	}
}

// config is the parsed command line and environment.
type config struct {
	host, bindHost                        string
	userPort, servingPort, metricsPort    int
	opts                                  queueproxy.Options
	drainTimeout, drainQuiet              time.Duration
	logLevel                              slog.Level
	requestTimeout, startTO, idleTimeout  time.Duration
	probePeriod, probeTimeout, probeLimit time.Duration
	upgradeDrainLim                       time.Duration
}

// parse reads flags from args, with defaults taken from the environment.
func parse(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("queue-proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var envErr error
	str := func(p *string, name, env, def, usage string) {
		if v := getenv(env); v != "" {
			def = v
		}
		fs.StringVar(p, name, def, usage+" (env "+env+")")
	}
	num := func(p *int, name, env string, def int, usage string) {
		if v := getenv(env); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil && envErr == nil {
				envErr = fmt.Errorf("environment %s=%q: want an integer", env, v)
			}
			def = n
		}
		fs.IntVar(p, name, def, usage+" (env "+env+")")
	}
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		*p = def
		if v := getenv(env); v != "" {
			d, err := parseDuration(v)
			if err != nil && envErr == nil {
				envErr = fmt.Errorf("environment %s=%q: %w", env, v, err)
			}
			*p = d
		}
		fs.Func(name, usage+" (env "+env+", default "+p.String()+")", func(s string) error {
			d, err := parseDuration(s)
			*p = d
			return err
		})
	}
	var level string
	str(&c.host, "user-host", "USER_HOST", "127.0.0.1", "host of the app")
	num(&c.userPort, "user-port", "USER_PORT", revision.DefaultPort, "port of the app")
	str(&c.opts.Protocol, "user-protocol", "USER_PROTOCOL", revision.ProtocolHTTP1, "protocol of the app: http1 or h2c (Knative's port name); requests reach it in this protocol whatever the client speaks")
	// Not every interface: the stat and metrics port is unauthenticated.
	// On Kubernetes the pod IP is what the kubelet's probes and the
	// activator reach; anywhere else the app's own host is on loopback.
	str(&c.bindHost, "bind", "QUEUE_BIND_HOST", cmp.Or(getenv("SERVING_POD_IP"), "127.0.0.1"),
		"address to listen on, both ports (default: $SERVING_POD_IP on Kubernetes, else 127.0.0.1; \"\" or 0.0.0.0: every interface)")
	num(&c.servingPort, "serving-port", "QUEUE_SERVING_PORT", 8012, "port to serve requests on (HTTP/1.1 and h2c)")
	num(&c.metricsPort, "metrics-port", "QUEUE_METRICS_PORT", 9090, "port to serve stats and metrics on")
	str(&c.opts.Revision, "revision", "SERVING_REVISION", "", "revision name, for stats and metrics")
	str(&c.opts.Instance, "instance", "SERVING_POD", "", "instance name in stats (default: the host name)")
	num(&c.opts.ContainerConcurrency, "container-concurrency", "CONTAINER_CONCURRENCY", 0, "requests the app runs at once (0: unlimited)")
	num(&c.opts.QueueDepth, "queue-depth", "QUEUE_DEPTH", 0, "requests that may wait beyond the concurrency (0: 10 × concurrency)")
	dur(&c.requestTimeout, "request-timeout", "REVISION_TIMEOUT_SECONDS", revision.DefaultRequestTimeout, "whole-request timeout")
	dur(&c.startTO, "response-start-timeout", "REVISION_RESPONSE_START_TIMEOUT_SECONDS", 0, "time to the first response byte (0: the request timeout)")
	dur(&c.idleTimeout, "idle-timeout", "REVISION_IDLE_TIMEOUT_SECONDS", 0, "longest pause between response writes (0: none)")
	str(&c.opts.Readiness.HTTPPath, "probe-path", "PROBE_PATH", "", "HTTP readiness path (empty: TCP connect)")
	dur(&c.probePeriod, "probe-period", "PROBE_PERIOD", 0, "probe period once ready (0: on demand)")
	dur(&c.probeTimeout, "probe-timeout", "PROBE_TIMEOUT", revision.DefaultProbeTimeout, "timeout of one probe")
	dur(&c.probeLimit, "startup-probe-limit", "STARTUP_PROBE_LIMIT", queueproxy.DefaultStartupProbeLimit, "how long to probe every 50 ms from start")
	str(&c.opts.ActivatorSecret, "activator-secret", "ACTIVATOR_SECRET", "", "shared secret of the trusted activator (prefer the env var)")
	dur(&c.drainTimeout, "drain-timeout", "DRAIN_TIMEOUT", 0, "bound on the drain after SIGTERM (0: the quiet period plus the request timeout)")
	dur(&c.drainQuiet, "drain-quiet-period", "DRAIN_QUIET_PERIOD", queueproxy.DefaultDrainQuietPeriod,
		"after SIGTERM, keep serving until no request arrived for this long (restarted by each request; 0: exit once idle)")
	dur(&c.upgradeDrainLim, "upgrade-drain-limit", "UPGRADE_DRAIN_LIMIT", queueproxy.DefaultUpgradeDrainLimit, "how long a drain waits for WebSockets")
	str(&level, "log-level", "LOG_LEVEL", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if envErr != nil {
		return nil, envErr
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if c.userPort < 1 || c.userPort > 65535 {
		return nil, fmt.Errorf("-user-port = %d, want 1–65535", c.userPort)
	}
	if c.opts.Protocol != revision.ProtocolHTTP1 && c.opts.Protocol != revision.ProtocolH2C {
		return nil, fmt.Errorf("-user-protocol = %q, want http1 or h2c", c.opts.Protocol)
	}
	for _, p := range []struct {
		name string
		v    int
	}{{"-serving-port", c.servingPort}, {"-metrics-port", c.metricsPort}} {
		if p.v < 0 || p.v > 65535 {
			return nil, fmt.Errorf("%s = %d, want 0 (any free port) to 65535", p.name, p.v)
		}
	}
	if err := c.logLevel.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level = %q, want debug, info, warn or error", level)
	}
	if c.opts.Instance == "" {
		c.opts.Instance, _ = os.Hostname()
	}
	c.opts.Upstream = net.JoinHostPort(c.host, strconv.Itoa(c.userPort))
	c.opts.Timeouts = revision.Timeouts{Request: c.requestTimeout, ResponseStart: c.startTO, Idle: c.idleTimeout}
	c.opts.Readiness.Period, c.opts.Readiness.Timeout = c.probePeriod, c.probeTimeout
	c.opts.StartupProbeLimit, c.opts.UpgradeDrainLimit = c.probeLimit, c.upgradeDrainLim
	if c.drainQuiet > time.Hour {
		return nil, fmt.Errorf("-drain-quiet-period = %v, want 0 (none) to 1h", c.drainQuiet)
	}
	// On the command line 0 means none: the default is Knative's 30 s.
	c.opts.DrainQuietPeriod = c.drainQuiet
	if c.drainQuiet == 0 {
		c.opts.DrainQuietPeriod = -1
	}
	if c.drainTimeout == 0 {
		// A request arriving just before the quiet period ends may
		// still run for the whole request timeout.
		c.drainTimeout = c.drainQuiet + c.requestTimeout
	}
	return c, nil
}

// parseDuration accepts plain seconds (Knative's *_SECONDS variables)
// or a Go duration.
func parseDuration(s string) (time.Duration, error) {
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		if n < 0 || n > 1e7 {
			return 0, fmt.Errorf("%s seconds out of range 0–1e7", s)
		}
		return time.Duration(n * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("want seconds or a duration like 90s: %w", err)
	}
	return d, nil
}

// run serves until ctx ends, then drains and shuts down.
func run(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	c, err := parse(args, getenv, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: c.logLevel}))
	reg := prometheus.NewRegistry()
	c.opts.Logger, c.opts.Registerer = log, reg
	// Spans to the OTLP collector the standard variables name, if any,
	// continuing the W3C trace of each request.
	tp, err := otelenv.TracerProvider(ctx, "zeroscale-queue-proxy")
	if err != nil {
		return err
	}
	if tp != nil {
		c.opts.TracerProvider, c.opts.Propagator = tp, propagation.TraceContext{}
		defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }() // sends the last spans
	}
	p, err := queueproxy.New(c.opts)
	if err != nil {
		return err
	}
	servingL, err := net.Listen("tcp", net.JoinHostPort(c.bindHost, strconv.Itoa(c.servingPort)))
	if err != nil {
		return err
	}
	metricsL, err := net.Listen("tcp", net.JoinHostPort(c.bindHost, strconv.Itoa(c.metricsPort)))
	if err != nil {
		_ = servingL.Close()
		return err
	}
	drained := make(chan struct{})
	serving := hop.NewServer("", withStats(p))
	metrics := hop.NewServer("", withWaitForDrain(p.MetricsHandler(), drained))
	runCtx, stopRun := context.WithCancel(context.WithoutCancel(ctx))
	errc := make(chan error, 3)
	go func() { errc <- p.Run(runCtx) }()
	go func() { errc <- serving.Serve(servingL) }()
	go func() { errc <- metrics.Serve(metricsL) }()
	log.Info("serving", "addr", servingL.Addr().String(), "metrics", metricsL.Addr().String(), "upstream", c.opts.Upstream,
		"containerConcurrency", c.opts.ContainerConcurrency)
	// Registered after serving starts: describing the runtime metrics
	// takes a while and readiness should not wait for it.
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	var serveErr error
	select {
	case <-ctx.Done():
	case serveErr = <-errc:
		log.Error("server failed", "err", serveErr)
	}
	log.Info("draining", "quietPeriod", c.drainQuiet, "timeout", c.drainTimeout)
	drainCtx, cancel := context.WithTimeout(context.Background(), c.drainTimeout)
	defer cancel()
	// Health checks answer 503 from here on; requests are served until
	// the orchestrator has stopped routing here (the quiet period).
	if err := p.Drain(drainCtx); err != nil {
		log.Warn("drain incomplete", "err", err)
	}
	close(drained) // answers the preStop hooks waiting at hop.WaitForDrainPath
	err = errors.Join(serving.Shutdown(drainCtx), metrics.Shutdown(drainCtx))
	stopRun()
	log.Info("stopped", "err", err)
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return err
}

// withWaitForDrain serves hop.WaitForDrainPath, on the metrics port: 200
// "drained" once the queue-proxy has drained after SIGTERM (it blocks
// until then). The app container's preStop hook calls it, so Kubernetes
// sends the app SIGTERM only after the queue-proxy stopped sending it
// requests (Knative's /wait-for-drain).
func withWaitForDrain(h http.Handler, drained <-chan struct{}) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", h)
	mux.HandleFunc("GET "+hop.WaitForDrainPath, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-drained:
			_, _ = io.WriteString(w, "drained\n")
		case <-r.Context().Done():
		}
	})
	return mux
}

// withStats also serves the stats at stats.Path on the serving port, so
// an autoscaler that knows only an instance's address (the serving
// port) can scrape a sidecar; the path is in the queue-proxy's reserved
// /zeroscale/ prefix, like its health path.
func withStats(p *queueproxy.Proxy) http.Handler {
	m := p.MetricsHandler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == stats.Path && r.Method == http.MethodGet {
			m.ServeHTTP(w, r)
			return
		}
		p.ServeHTTP(w, r)
	})
}
