package knative

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/zeroscale/zeroscale/revision"
	"github.com/zeroscale/zeroscale/traffic"
)

// Ports and environment variables Knative reserves for itself.
var (
	// ReservedPorts are the queue-proxy's and the profiler's ports.
	reservedPorts = []int32{8012, 8013, 8022, 9090, 9091, 8008}
	// reservedEnvVars are set for every instance.
	reservedEnvVars = []string{"PORT", "K_SERVICE", "K_CONFIGURATION", "K_REVISION"}
	// validPortNames choose the protocol spoken to the app.
	validPortNames = []string{"", "h2c", "http1"}
)

// fieldSet classifies the JSON fields of one Kubernetes struct: allowed
// (they run here), ignored (Kubernetes-only, nothing to do on one
// machine), unsupported (Knative allows them, zeroscale does not run
// them: refused with a reason) and, for everything else, masked (Knative
// refuses them: "must not set the field(s)").
type fieldSet struct {
	allowed     []string
	ignored     []string
	unsupported map[string]string // field -> why
}

var (
	podSpecFields = fieldSet{
		allowed: []string{"containers"},
		ignored: []string{"serviceAccountName", "imagePullSecrets", "enableServiceLinks"},
		unsupported: map[string]string{
			"volumes": "volumes are not mounted into local instances; bake the files into the image or working directory",
		},
	}
	containerFields = fieldSet{
		allowed: []string{"name", "image", "command", "args", "env", "workingDir", "ports", "resources", "readinessProbe"},
		ignored: []string{"imagePullPolicy", "terminationMessagePath", "terminationMessagePolicy"},
		unsupported: map[string]string{
			"envFrom":         "set each variable in env instead",
			"volumeMounts":    "volumes are not mounted into local instances",
			"securityContext": "instances run as the host's user",
			"livenessProbe":   "only readinessProbe is run; a crashed instance is restarted",
			"startupProbe":    "only readinessProbe is run",
		},
	}
	probeFields = fieldSet{
		allowed: []string{"httpGet", "tcpSocket", "periodSeconds", "timeoutSeconds", "successThreshold", "failureThreshold", "initialDelaySeconds"},
		unsupported: map[string]string{
			"exec": "use httpGet or tcpSocket",
			"grpc": "use httpGet or tcpSocket",
		},
	}
	httpGetFields = fieldSet{
		allowed: []string{"path", "port", "scheme"},
		unsupported: map[string]string{
			"host":        "the probe always goes to the instance",
			"httpHeaders": "the probe sends no extra headers",
		},
	}
	tcpSocketFields = fieldSet{
		allowed:     []string{"port"},
		unsupported: map[string]string{"host": "the probe always goes to the instance"},
	}
	portFields    = fieldSet{allowed: []string{"containerPort", "name", "protocol"}}
	envFields     = fieldSet{allowed: []string{"name", "value"}, unsupported: map[string]string{"valueFrom": "valueFrom (secretKeyRef, configMapKeyRef, fieldRef) is not supported yet: set value"}}
	resourceNames = []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory}
)

// check reports v's set fields that fs does not allow, at path.
func (fs fieldSet) check(errs *fieldErrors, v any, path string) {
	var masked []string
	for _, name := range setFields(reflect.ValueOf(v)) {
		switch {
		case slices.Contains(fs.allowed, name), slices.Contains(fs.ignored, name):
		case fs.unsupported[name] != "":
			errs.unsupported(fs.unsupported[name], path+"."+name)
		default:
			masked = append(masked, path+"."+name)
		}
	}
	if len(masked) > 0 {
		slices.Sort(masked)
		errs.disallowed(masked...)
	}
}

// setFields returns the JSON names of the fields of struct v that are
// set, inline structs flattened.
func setFields(v reflect.Value) []string {
	var names []string
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			continue
		}
		if name == "" && f.Anonymous && strings.Contains(opts, "inline") {
			names = append(names, setFields(v.Field(i))...)
			continue
		}
		if name == "" {
			name = f.Name
		}
		if !v.Field(i).IsZero() {
			names = append(names, name)
		}
	}
	return names
}

// Validate checks s, after SetDefaults, as Knative's webhook checks a
// Service, and for what runs here. It reports every problem at once,
// each a *revision.FieldError with its full path, in Knative's words where
// Knative has them:
//
//   - metadata.name: required, a DNS-1035 label; generateName is refused
//     (a local service needs its name up front);
//   - autoscaling.knative.dev/* annotations on the template (on the
//     Service's own metadata they are refused, as Knative refuses them)
//     and serving.knative.dev/rollout-duration;
//   - spec.template.metadata.name: a DNS-1035 label starting with
//     "<service>-";
//   - exactly one container with image or command (image: a container,
//     run by a Docker backend; only command: a local process); at most
//     one port, named "", "http1" or "h2c", TCP, not reserved (8012,
//     8013, 8022, 9090, 9091, 8008); env names valid, unique and not PORT
//     or K_*; cpu and memory resources only, limits ≥ requests;
//   - containerConcurrency in [0, 1000], timeoutSeconds in [0, 600],
//     responseStartTimeoutSeconds in [0, timeoutSeconds],
//     idleTimeoutSeconds in [0, 600];
//   - readinessProbe: httpGet (HTTP) or tcpSocket on the container port;
//     Knative's rules for periodSeconds 0 (aggressive probing);
//   - spec.traffic: Knative's route rules (percents sum to 100, one of
//     revisionName or latestRevision, unique DNS-1035 tags);
//     configurationName and url are refused (a Service routes to its own
//     configuration; url is status).
//
// Fields Knative masks (lifecycle, stdin, tty, nodeName, hostNetwork,
// restartPolicy, ...) are "must not set the field(s)"; fields Knative
// accepts but that cannot run here (volumes, envFrom, valueFrom,
// securityContext, liveness and exec probes) are "not supported by
// zeroscale" with the reason; serviceAccountName, imagePullSecrets,
// enableServiceLinks, imagePullPolicy and terminationMessage* are
// accepted and have no effect.
func (s *Service) Validate() error {
	var errs fieldErrors
	validateMeta(&errs, s.ObjectMeta)
	validateTemplate(&errs, s.Name, s.Spec.Template)
	validateTraffic(&errs, s.Spec.Traffic)
	return errs.err()
}

func validateMeta(errs *fieldErrors, m metav1.ObjectMeta) {
	switch {
	case m.Name == "":
		errs.missing("metadata.name")
	default:
		if msgs := validation.IsDNS1035Label(m.Name); len(msgs) > 0 {
			errs.invalid(fmt.Sprintf("%q", m.Name), "metadata.name", msgs...)
		}
	}
	if m.GenerateName != "" {
		errs.unsupported("give the service a name", "metadata.generateName")
	}
	if m.Namespace != "" {
		if msgs := validation.IsDNS1123Label(m.Namespace); len(msgs) > 0 {
			errs.invalid(fmt.Sprintf("%q", m.Namespace), "metadata.namespace", msgs...)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m.Annotations)) {
		if strings.HasPrefix(k, revision.AnnotationPrefix) {
			// Knative's own check (serving#9358): users keep putting them here.
			errs.add(fmt.Sprintf("invalid key name %q", k), `autoscaling annotations must be put under "spec.template.metadata.annotations" to work`, "metadata.annotations")
		}
	}
	if _, err := traffic.ParseRolloutDuration(m.Annotations); err != nil {
		var fe *revision.FieldError
		if errors.As(err, &fe) {
			errs.add(fe.Message, "", "metadata.annotations["+traffic.RolloutDurationAnnotation+"]")
		}
	}
}

// annotations checks the autoscaling.knative.dev/* annotations,
// serving.knative.dev/progress-deadline and zeroscale.dev/socket-activation.
func annotations(errs *fieldErrors, a map[string]string, path string) {
	_, err := revision.ParseAnnotations(a)
	_, perr := revision.ParseProgressDeadline(a)
	_, serr := revision.ParseSocketActivation(a)
	for _, e := range flatten(errors.Join(err, perr, serr)) {
		var fe *revision.FieldError
		if errors.As(e, &fe) {
			errs.invalid(fmt.Sprintf("%q", fe.Value), path+"["+fe.Field+"]", "must be "+fe.Allowed)
		} else {
			errs.invalid(e.Error(), path)
		}
	}
}

func flatten(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func validateTemplate(errs *fieldErrors, service string, t RevisionTemplateSpec) {
	const meta = "spec.template.metadata"
	if t.Name != "" {
		if msgs := validation.IsDNS1035Label(t.Name); len(msgs) > 0 {
			errs.invalid(fmt.Sprint("not a DNS 1035 label: ", msgs), meta+".name")
		} else if prefix := service + "-"; !strings.HasPrefix(t.Name, prefix) {
			errs.invalid(fmt.Sprintf("%q must have prefix %q", t.Name, prefix), meta+".name")
		}
	}
	if t.GenerateName != "" {
		errs.unsupported("name revisions with spec.template.metadata.name, or let them be numbered", meta+".generateName")
	}
	annotations(errs, t.Annotations, meta+".annotations")

	const spec = "spec.template.spec"
	rs := t.Spec
	podSpecFields.check(errs, rs.PodSpec, spec)
	switch n := len(rs.Containers); {
	case n == 0:
		errs.missing(spec + ".containers")
	case n > 1:
		errs.unsupported(fmt.Sprintf("one container per revision, got %d", n), spec+".containers")
	default:
		validateContainer(errs, rs.Containers[0], spec+".containers[0]")
	}
	timeout := defaultTimeoutSeconds
	if rs.TimeoutSeconds != nil {
		timeout = *rs.TimeoutSeconds
		if timeout < 0 || timeout > MaxTimeoutSeconds {
			errs.outOfBounds(timeout, 0, MaxTimeoutSeconds, spec+".timeoutSeconds")
		}
	}
	if p := rs.ResponseStartTimeoutSeconds; p != nil && (*p < 0 || *p > max(timeout, 0)) {
		errs.outOfBounds(*p, 0, max(timeout, 0), spec+".responseStartTimeoutSeconds")
	}
	if p := rs.IdleTimeoutSeconds; p != nil && (*p < 0 || *p > MaxTimeoutSeconds) {
		errs.outOfBounds(*p, 0, MaxTimeoutSeconds, spec+".idleTimeoutSeconds")
	}
	if p := rs.ContainerConcurrency; p != nil && (*p < 0 || *p > revision.MaxContainerConcurrency) {
		errs.outOfBounds(*p, 0, revision.MaxContainerConcurrency, spec+".containerConcurrency")
	}
}

func validateContainer(errs *fieldErrors, c corev1.Container, path string) {
	containerFields.check(errs, c, path)
	if c.Name == "queue-proxy" {
		errs.add(`"queue-proxy" is a reserved container name`, "", path+".name")
	}
	if c.Image == "" && len(c.Command) == 0 {
		errs.missing(path + ".image")
		errs.list[len(errs.list)-1].Allowed = "set image (a container, run by the Docker backend) or command (a local executable, run as a process)"
	}
	for i, a := range c.Command {
		if i == 0 && a == "" {
			errs.invalid(`""`, path+".command[0]", "the executable must be named")
		}
		noNUL(errs, a, fmt.Sprintf("%s.command[%d]", path, i))
	}
	for i, a := range c.Args {
		noNUL(errs, a, fmt.Sprintf("%s.args[%d]", path, i))
	}
	noNUL(errs, c.Image, path+".image")
	noNUL(errs, c.WorkingDir, path+".workingDir")

	seen := make(map[string]bool, len(c.Env))
	for i, e := range c.Env {
		at := fmt.Sprintf("%s.env[%d]", path, i)
		envFields.check(errs, e, at)
		switch {
		case e.Name == "":
			errs.missing(at + ".name")
		case slices.Contains(reservedEnvVars, e.Name):
			errs.add(fmt.Sprintf("%q is a reserved environment variable", e.Name), "", at+".name")
		case len(validation.IsEnvVarName(e.Name)) > 0:
			errs.invalid(fmt.Sprintf("%q", e.Name), at+".name", validation.IsEnvVarName(e.Name)...)
		case seen[e.Name]:
			errs.invalid(fmt.Sprintf("%q", e.Name), at+".name", "each environment variable may be set once")
		}
		seen[e.Name] = true
		noNUL(errs, e.Value, at+".value")
	}

	port := int32(revision.DefaultPort)
	switch len(c.Ports) {
	case 0:
	case 1:
		p := c.Ports[0]
		at := path + ".ports"
		portFields.check(errs, p, at)
		if p.ContainerPort != 0 {
			port = p.ContainerPort
		}
		if slices.Contains(reservedPorts, p.ContainerPort) {
			errs.invalid(fmt.Sprintf("%d is a reserved port", p.ContainerPort), at+".containerPort",
				fmt.Sprintf("%d is a reserved port, please use a different value", p.ContainerPort))
		}
		if p.ContainerPort < 0 || p.ContainerPort > 65535 {
			errs.outOfBounds(p.ContainerPort, 0, 65535, at+".containerPort")
		}
		if p.Protocol != "" && p.Protocol != corev1.ProtocolTCP {
			errs.invalid(p.Protocol, at+".protocol")
		}
		if !slices.Contains(validPortNames, p.Name) {
			errs.add(fmt.Sprintf("Port name %v is not allowed", p.Name), "Name must be empty, or one of: 'h2c', 'http1'", at)
		}
	default:
		errs.add("more than one container port is set", "Only a single port is allowed across all containers", strings.TrimSuffix(path, "[0]")+"[*].ports")
	}

	validateResources(errs, c.Resources, path+".resources")
	if c.ReadinessProbe != nil {
		validateProbe(errs, *c.ReadinessProbe, port, portName(c), path+".readinessProbe")
	}
}

func portName(c corev1.Container) string {
	if len(c.Ports) > 0 {
		return c.Ports[0].Name
	}
	return ""
}

func noNUL(errs *fieldErrors, v, path string) {
	if strings.IndexByte(v, 0) >= 0 {
		errs.invalid(fmt.Sprintf("%q", v), path, "must not contain a NUL byte")
	}
}

func validateResources(errs *fieldErrors, r corev1.ResourceRequirements, path string) {
	if len(r.Claims) > 0 {
		errs.disallowed(path + ".claims")
	}
	for _, kind := range []struct {
		name string
		list corev1.ResourceList
	}{{"limits", r.Limits}, {"requests", r.Requests}} {
		for name, q := range kind.list {
			at := path + "." + kind.name + "." + string(name)
			if !slices.Contains(resourceNames, name) {
				errs.unsupported("only cpu and memory are known here", at)
				continue
			}
			if q.Sign() < 0 {
				errs.invalid(q.String(), at, "must be greater than or equal to 0")
			}
		}
	}
	for _, name := range resourceNames {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if okReq && okLim && req.Cmp(lim) > 0 {
			errs.invalid(req.String(), path+".requests."+string(name),
				fmt.Sprintf("must be less than or equal to %s limit of %s", name, lim.String()))
		}
	}
}

func validateProbe(errs *fieldErrors, p corev1.Probe, port int32, portName, path string) {
	probeFields.check(errs, p, path)
	var handlers []string
	if h := p.HTTPGet; h != nil {
		handlers = append(handlers, "httpGet")
		httpGetFields.check(errs, *h, path+".httpGet")
		probePort(errs, h.Port.IntVal, h.Port.StrVal, port, portName, path+".httpGet.port")
		if h.Scheme != "" && h.Scheme != corev1.URISchemeHTTP {
			errs.unsupported("the probe speaks plain HTTP to the instance", path+".httpGet.scheme")
		}
		if h.Path != "" && !strings.HasPrefix(h.Path, "/") {
			errs.invalid(fmt.Sprintf("%q", h.Path), path+".httpGet.path", `must start with "/"`)
		}
	}
	if t := p.TCPSocket; t != nil {
		handlers = append(handlers, "tcpSocket")
		tcpSocketFields.check(errs, *t, path+".tcpSocket")
		probePort(errs, t.Port.IntVal, t.Port.StrVal, port, portName, path+".tcpSocket.port")
	}
	if p.Exec != nil {
		handlers = append(handlers, "exec")
	}
	if p.GRPC != nil {
		handlers = append(handlers, "grpc")
	}
	switch {
	case len(handlers) == 0:
		errs.add("expected exactly one, got neither", "", path+".httpGet", path+".tcpSocket", path+".exec", path+".grpc")
	case len(handlers) > 1:
		paths := make([]string, len(handlers))
		for i, h := range handlers {
			paths[i] = path + "." + h
		}
		errs.add("expected exactly one, got both", "", paths...)
	}
	if p.PeriodSeconds < 0 {
		errs.outOfBounds(p.PeriodSeconds, 0, math.MaxInt32, path+".periodSeconds")
	}
	if p.InitialDelaySeconds < 0 {
		errs.outOfBounds(p.InitialDelaySeconds, 0, math.MaxInt32, path+".initialDelaySeconds")
	}
	if p.SuccessThreshold < 1 {
		errs.outOfBounds(p.SuccessThreshold, 1, math.MaxInt32, path+".successThreshold")
	}
	if p.PeriodSeconds == 0 {
		if p.FailureThreshold != 0 {
			errs.add("failureThreshold is disallowed when periodSeconds is zero", "", path+".failureThreshold")
		}
		if p.TimeoutSeconds != 0 {
			errs.add("timeoutSeconds is disallowed when periodSeconds is zero", "", path+".timeoutSeconds")
		}
	} else {
		if p.TimeoutSeconds < 1 {
			errs.outOfBounds(p.TimeoutSeconds, 1, math.MaxInt32, path+".timeoutSeconds")
		}
		if p.FailureThreshold < 1 {
			errs.outOfBounds(p.FailureThreshold, 1, math.MaxInt32, path+".failureThreshold")
		}
	}
}

// probePort accepts the container's own port, by number, by name or
// unset (0).
func probePort(errs *fieldErrors, n int32, name string, port int32, portName, path string) {
	switch {
	case name != "" && name != portName:
		errs.invalid(name, path, "Probe port must match container port")
	case name == "" && n != 0 && n != port:
		errs.unsupported(fmt.Sprintf("the probe goes to the container port (%d)", port), path)
	}
}

func validateTraffic(errs *fieldErrors, targets []TrafficTarget) {
	for i, t := range targets {
		at := fmt.Sprintf("spec.traffic[%d]", i)
		if t.ConfigurationName != "" {
			errs.disallowed(at + ".configurationName")
		}
		if t.URL != "" {
			errs.disallowed(at + ".url")
		}
	}
	if err := toTrafficSpec(targets).Validate(); err != nil {
		for _, e := range flatten(err) {
			var fe *revision.FieldError
			if !errors.As(e, &fe) {
				errs.invalid(e.Error(), "spec.traffic")
				continue
			}
			var paths []string
			for _, p := range fe.Paths() {
				paths = append(paths, "spec."+p)
			}
			errs.add(fe.Message, "", paths...)
		}
	}
}
