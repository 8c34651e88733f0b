package revision

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/internal/bounds"
)

// Spec is what one instance of a revision runs. It serves every backend:
// Image for Docker and Kubernetes, Command/Args for local processes.
// The zero value of every optional field means "use the default" (see
// Spec.WithDefaults).
type Spec struct {
	// Image is the container image (Docker, Kubernetes backends).
	Image string
	// Command and Args start a local process (process backend), or
	// override the image's entrypoint and arguments.
	Command []string
	Args    []string
	// Env is passed to the instance in order. PORT is always set by the
	// backend to Port and must not be set here.
	Env []EnvVar
	// WorkingDir is the instance's working directory ("" = inherit).
	WorkingDir string
	// Port is the port the app listens on, passed to it as PORT.
	// 0 means DefaultPort (8080); allowed 1–65535.
	Port int
	// Protocol is what the app speaks on Port, Knative's port name:
	// ProtocolHTTP1 ("" means it) or ProtocolH2C (HTTP/2 without TLS,
	// as gRPC servers speak). Every hop to an instance uses it,
	// whatever the client speaks: an HTTP/2 client of an HTTP/1 app is
	// served over HTTP/1.1 upstream.
	Protocol string
	// Resources are hints for engines that enforce them.
	Resources Resources
	// ContainerConcurrency is the hard limit of requests in flight per
	// instance: 0 means unlimited, at most MaxContainerConcurrency.
	ContainerConcurrency int
	// Timeouts bound each request.
	Timeouts Timeouts
	// Readiness says how an instance is probed before it gets traffic.
	Readiness Probe
	// Scaling holds the per-revision autoscaling settings (Knative's
	// autoscaling.knative.dev/* annotations). Unset fields take the
	// host's autoscaler.Config defaults.
	Scaling Scaling
	// ProgressDeadline is how long the revision may take to get its
	// instances ready when scaling up from zero before it is given up
	// as failed (Knative's serving.knative.dev/progress-deadline
	// annotation, see ParseProgressDeadline). 0 means the host's
	// autoscaler.Config.ProgressDeadline; else whole seconds in [1s, 24h].
	ProgressDeadline time.Duration
	// SocketActivation hands the app its listening socket, systemd's
	// way (LISTEN_FDS=1, LISTEN_PID, the socket as file descriptor 3,
	// bound to 127.0.0.1:PORT), instead of letting it bind PORT: the
	// first request then waits in the kernel's accept queue while the
	// app starts, not on a readiness probe loop. Only for apps that
	// accept an inherited listener (e.g. process.Listen in Go); engines
	// that cannot pass one (containers) ignore it. Knative has no such
	// setting: SocketActivationAnnotation ("zeroscale.dev/socket-activation")
	// carries it in manifests.
	SocketActivation bool
}

// Values of Spec.Protocol: Knative's container port names.
const (
	ProtocolHTTP1 = "http1"
	ProtocolH2C   = "h2c"
)

// EnvVar is one environment variable.
type EnvVar struct {
	Name  string
	Value string
}

// Resources are CPU and memory requests and limits. Zero means unset.
type Resources struct {
	CPURequestMillis   int64
	CPULimitMillis     int64
	MemoryRequestBytes int64
	MemoryLimitBytes   int64
}

// Timeouts bound a request's life, as Knative's timeoutSeconds,
// responseStartTimeoutSeconds and idleTimeoutSeconds.
type Timeouts struct {
	// Request is the whole request's deadline. 0 means
	// DefaultRequestTimeout (300 s); at most MaxRequestTimeout (1 h).
	Request time.Duration
	// ResponseStart bounds the time to the first response byte.
	// 0 means the same as Request; at most Request.
	ResponseStart time.Duration
	// Idle bounds the time between two response writes. 0 means none.
	Idle time.Duration
}

// Probe says how readiness is checked: a TCP connect to Port by default,
// or an HTTP GET of HTTPPath answered 2xx.
type Probe struct {
	// HTTPPath, when set (starting with "/"), makes the probe an HTTP GET.
	HTTPPath string
	// Period between probes once ready. 0 means aggressive probing
	// (every 50 ms) until the first success, then on demand.
	Period time.Duration
	// Timeout of one probe. 0 means DefaultProbeTimeout (1 s).
	Timeout time.Duration
}

// Defaults and limits of Spec fields.
const (
	DefaultPort             = 8080
	MaxContainerConcurrency = bounds.MaxContainerConcurrency
	DefaultRequestTimeout   = 300 * time.Second
	MaxRequestTimeout       = time.Hour
	// DefaultProgressDeadline and MaxProgressDeadline are the default
	// (Knative's config-deployment progress-deadline) and the bound of
	// Spec.ProgressDeadline and autoscaler.Config.ProgressDeadline.
	DefaultProgressDeadline = 600 * time.Second
	MaxProgressDeadline     = bounds.MaxProgressDeadline
	DefaultProbeTimeout     = time.Second
	AggressiveProbePeriod   = 50 * time.Millisecond
)

// reservedEnvVars are set by the backend for every instance (PORT) or
// reserved by Knative for it to set (K_SERVICE, K_CONFIGURATION,
// K_REVISION); a Spec must not set them.
var reservedEnvVars = []string{"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}

// WithDefaults returns a deep copy of s with every defaulted field filled
// in: Port 8080, Timeouts.Request 300 s, Timeouts.ResponseStart equal to
// Timeouts.Request, Readiness.Timeout 1 s. Scaling is left as is: its
// defaults are the host's autoscaler.Config, applied by its Resolve.
func (s Spec) WithDefaults() Spec {
	s = s.clone()
	if s.Port == 0 {
		s.Port = DefaultPort
	}
	if s.Timeouts.Request == 0 {
		s.Timeouts.Request = DefaultRequestTimeout
	}
	if s.Timeouts.ResponseStart == 0 {
		s.Timeouts.ResponseStart = s.Timeouts.Request
	}
	if s.Readiness.Timeout == 0 {
		s.Readiness.Timeout = DefaultProbeTimeout
	}
	return s
}

// Validate checks s (after WithDefaults, so zero values are fine) and
// returns every problem found, joined; each is a *FieldError named
// "Spec.<Field>" or, for scaling settings, by annotation key.
//
// Rules: Image or Command must be given; Port in [1, 65535];
// ContainerConcurrency in [0, 1000]; Timeouts.Request in (0, 1h],
// ResponseStart in (0, Request], Idle in [0, 1h]; Env names match
// [-._a-zA-Z][-._a-zA-Z0-9]* (Kubernetes' rule), are unique and are not
// PORT, K_SERVICE, K_CONFIGURATION or K_REVISION; no string contains a
// NUL byte (it cannot reach a process); Readiness.HTTPPath is empty or
// starts with "/", Period in [0, 1h], Timeout in (0, 1h]; resources are
// non-negative and each limit, when set, is ≥ its request; Scaling
// passes Scaling.Validate.
func (s Spec) Validate() error { return s.WithDefaults().validate() }

// validate is Validate of s, which already has its defaults.
func (s Spec) validate() error {
	var errs errList
	if s.Image == "" && (len(s.Command) == 0 || s.Command[0] == "") {
		errs.add("Spec.Image", "", "set, or Spec.Command set (one of the two is required)")
	}
	noNUL := func(field, v string) {
		if strings.IndexByte(v, 0) >= 0 {
			errs.add(field, v, "free of NUL bytes")
		}
	}
	noNUL("Spec.Image", s.Image)
	noNUL("Spec.WorkingDir", s.WorkingDir)
	for i, a := range s.Command {
		noNUL(fmt.Sprintf("Spec.Command[%d]", i), a)
	}
	for i, a := range s.Args {
		noNUL(fmt.Sprintf("Spec.Args[%d]", i), a)
	}
	if s.Port < 1 || s.Port > 65535 {
		errs.add("Spec.Port", strconv.Itoa(s.Port), "in [1, 65535] (0 = 8080)")
	}
	switch s.Protocol {
	case "", ProtocolHTTP1, ProtocolH2C:
	default:
		errs.add("Spec.Protocol", s.Protocol, `"http1" or "h2c" ("" = http1)`)
	}
	checkContainerConcurrency(&errs, s.ContainerConcurrency)
	t := s.Timeouts
	switch {
	case t.Request <= 0 || t.Request > MaxRequestTimeout:
		errs.add("Spec.Timeouts.Request", t.Request.String(), "in (0s, 1h0m0s] (0 = 5m0s)")
	case t.ResponseStart < 0 || t.ResponseStart > t.Request:
		// Checked only against a valid Request, to report one root cause.
		errs.add("Spec.Timeouts.ResponseStart", t.ResponseStart.String(),
			fmt.Sprintf("in (0s, Timeouts.Request (%v)] (0 = Timeouts.Request)", t.Request))
	}
	if t.Idle < 0 || t.Idle > MaxRequestTimeout {
		errs.add("Spec.Timeouts.Idle", t.Idle.String(), "in [0s, 1h0m0s] (0 = none)")
	}
	if d := s.ProgressDeadline; d != 0 && !bounds.ProgressDeadline(d) {
		errs.add("Spec.ProgressDeadline", d.String(), bounds.ProgressDeadlineRange+" (0 = Config.ProgressDeadline)")
	}
	seen := make(map[string]bool, len(s.Env))
	for i, e := range s.Env {
		field := fmt.Sprintf("Spec.Env[%d].Name", i)
		switch {
		case !validEnvName(e.Name):
			errs.add(field, e.Name, "a name matching [-._a-zA-Z][-._a-zA-Z0-9]*")
		case slices.Contains(reservedEnvVars, e.Name):
			errs.add(field, e.Name, "not one of PORT, K_SERVICE, K_CONFIGURATION, K_REVISION (set by the backend)")
		case seen[e.Name]:
			errs.add(field, e.Name, "unique within Spec.Env")
		}
		seen[e.Name] = true
		noNUL(fmt.Sprintf("Spec.Env[%d].Value", i), e.Value)
	}
	p := s.Readiness
	if p.HTTPPath != "" && !strings.HasPrefix(p.HTTPPath, "/") {
		errs.add("Spec.Readiness.HTTPPath", p.HTTPPath, `empty (TCP probe) or a path starting with "/"`)
	}
	noNUL("Spec.Readiness.HTTPPath", p.HTTPPath)
	if p.Period < 0 || p.Period > time.Hour {
		errs.add("Spec.Readiness.Period", p.Period.String(), "in [0s, 1h0m0s] (0 = aggressive until ready)")
	}
	if p.Timeout <= 0 || p.Timeout > time.Hour {
		errs.add("Spec.Readiness.Timeout", p.Timeout.String(), "in (0s, 1h0m0s] (0 = 1s)")
	}
	r := s.Resources
	resource := func(name string, req, limit int64) {
		if req < 0 {
			errs.add("Spec.Resources."+name+"Request"+unitOf(name), strconv.FormatInt(req, 10), "≥ 0 (0 = unset)")
		}
		if limit < 0 {
			errs.add("Spec.Resources."+name+"Limit"+unitOf(name), strconv.FormatInt(limit, 10), "≥ 0 (0 = unset)")
		} else if limit > 0 && req > limit {
			errs.add("Spec.Resources."+name+"Limit"+unitOf(name), strconv.FormatInt(limit, 10),
				fmt.Sprintf("≥ the request (%d) when set", req))
		}
	}
	resource("CPU", r.CPURequestMillis, r.CPULimitMillis)
	resource("Memory", r.MemoryRequestBytes, r.MemoryLimitBytes)
	errs.merge(s.Scaling.Validate())
	return errs.err()
}

// checkContainerConcurrency is Spec.Validate's check of
// ContainerConcurrency (autoscaler.Config.Resolve applies the same one).
func checkContainerConcurrency(errs *errList, cc int) {
	if !bounds.ContainerConcurrency(cc) {
		errs.add("Spec.ContainerConcurrency", strconv.Itoa(cc), bounds.ContainerConcurrencyRange)
	}
}

func unitOf(resource string) string {
	if resource == "CPU" {
		return "Millis"
	}
	return "Bytes"
}

func validEnvName(n string) bool {
	if n == "" {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		letter := c == '-' || c == '.' || c == '_' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// clone returns a deep copy of s: no slice or pointer is shared with s.
func (s Spec) clone() Spec {
	s.Command = slices.Clone(s.Command)
	s.Args = slices.Clone(s.Args)
	s.Env = slices.Clone(s.Env)
	s.Scaling = s.Scaling.clone()
	return s
}

// Hash returns a stable content hash of s after WithDefaults: the hex
// SHA-256 of a canonical encoding of every field. Two specs that behave
// the same (Port 0 and Port 8080, nil and empty slices) hash the same;
// any real change changes the hash. Each field is encoded with its name
// and only when set, so a field added to Spec in a later version leaves
// the hashes of specs that do not use it unchanged.
func (s Spec) Hash() string { return s.WithDefaults().hash() }

// hash is Hash of s, which already has its defaults (no second copy).
func (s Spec) hash() string {
	e := &hashEncoder{b: make([]byte, 0, 1024)}
	e.str("Image", s.Image)
	e.strs("Command", s.Command)
	e.strs("Args", s.Args)
	if len(s.Env) > 0 {
		e.name("Env", len(s.Env))
		for _, v := range s.Env {
			e.raw(v.Name)
			e.raw(v.Value)
		}
	}
	e.str("WorkingDir", s.WorkingDir)
	e.int("Port", int64(s.Port))
	proto := s.Protocol
	if proto == ProtocolHTTP1 {
		proto = "" // the same app either way
	}
	e.str("Protocol", proto)
	r := s.Resources
	e.int("Resources.CPURequestMillis", r.CPURequestMillis)
	e.int("Resources.CPULimitMillis", r.CPULimitMillis)
	e.int("Resources.MemoryRequestBytes", r.MemoryRequestBytes)
	e.int("Resources.MemoryLimitBytes", r.MemoryLimitBytes)
	e.int("ContainerConcurrency", int64(s.ContainerConcurrency))
	e.int("Timeouts.Request", int64(s.Timeouts.Request))
	e.int("Timeouts.ResponseStart", int64(s.Timeouts.ResponseStart))
	e.int("Timeouts.Idle", int64(s.Timeouts.Idle))
	e.str("Readiness.HTTPPath", s.Readiness.HTTPPath)
	e.int("Readiness.Period", int64(s.Readiness.Period))
	e.int("Readiness.Timeout", int64(s.Readiness.Timeout))
	e.int("ProgressDeadline", int64(s.ProgressDeadline))
	if s.SocketActivation { // only when set: hashes of existing specs stay
		e.int("SocketActivation", 1)
	}
	// Scaling through its annotations: one canonical text per setting,
	// and new Scaling fields are covered by the field table.
	for i := range scalingFields {
		if v, ok := scalingFields[i].get(&s.Scaling); ok {
			e.str(scalingFields[i].key, v)
		}
	}
	sum := sha256.Sum256(e.b)
	return hex.EncodeToString(sum[:])
}

// hashEncoder builds the canonical encoding Hash digests: a sequence of
// set fields, each its length-prefixed name, a count, then
// length-prefixed or fixed-width values, so no two specs encode alike.
type hashEncoder struct{ b []byte }

func (e *hashEncoder) u64(v uint64) { e.b = binary.BigEndian.AppendUint64(e.b, v) }

func (e *hashEncoder) raw(v string) {
	e.u64(uint64(len(v)))
	e.b = append(e.b, v...)
}

// name starts a field holding n values.
func (e *hashEncoder) name(field string, n int) {
	e.raw(field)
	e.u64(uint64(n))
}

func (e *hashEncoder) int(field string, v int64) {
	if v != 0 {
		e.name(field, 1)
		e.u64(uint64(v))
	}
}

func (e *hashEncoder) str(field, v string) {
	if v != "" {
		e.name(field, 1)
		e.raw(v)
	}
}

func (e *hashEncoder) strs(field string, v []string) {
	if len(v) > 0 {
		e.name(field, len(v))
		for _, s := range v {
			e.raw(s)
		}
	}
}
