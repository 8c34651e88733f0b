package revision

import "time"

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
	// host's Config defaults.
	Scaling Scaling
}

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
	MaxContainerConcurrency = 1000
	DefaultRequestTimeout   = 300 * time.Second
	MaxRequestTimeout       = time.Hour
	DefaultProbeTimeout     = time.Second
	AggressiveProbePeriod   = 50 * time.Millisecond
)
