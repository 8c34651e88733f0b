package k8slab

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/tools/cache"
)

// Image is what the Runtime runs for one container image: a local
// program.
type Image struct {
	// Entrypoint and Cmd work as in an OCI image: a container's Command
	// replaces Entrypoint (and drops Cmd), its Args replace Cmd.
	Entrypoint []string
	Cmd        []string
	// Env is the image's environment; the container's comes after it.
	Env []string
	// Overrides come after the container's environment and win. They
	// stand in for the pod's network namespace, which containers here do
	// not have: "$(POD_IP)" in a value becomes the pod's IP, so e.g.
	// QUEUE_BIND_HOST=$(POD_IP) makes a sidecar bind the pod IP rather
	// than every interface, and USER_HOST=$(POD_IP) makes it reach the
	// app there rather than at localhost.
	Overrides []string
}

// EventKind is a step in a pod's life on the node.
type EventKind string

// The events the Runtime records per pod, in the order they happen.
const (
	EventBound       EventKind = "bound"       // the Runtime saw the pod bound to the node
	EventIP          EventKind = "ip"          // its status with the pod IP was written
	EventStarted     EventKind = "started"     // a container's process started
	EventListening   EventKind = "listening"   // a container's first declared port accepted a connection
	EventReady       EventKind = "ready"       // the status with Ready=True was written
	EventTerminating EventKind = "terminating" // the deletion was seen; preStop hooks and SIGTERM follow
	EventExited      EventKind = "exited"      // a container's process exited
	EventRemoved     EventKind = "removed"     // the pod was deleted from the API (grace 0)
)

// Event is one recorded step.
type Event struct {
	Time      time.Time
	Kind      EventKind
	Container string // for started, listening, exited
}

const (
	maxEventPods     = 4096 // pods whose events are kept
	defaultProbe     = 10 * time.Second
	listenPoll       = 5 * time.Millisecond
	listenPollBudget = time.Minute
)

// Runtime is the node's container runtime and kubelet; see the package
// doc.
type Runtime struct {
	c    *Cluster
	opts Options
	ctx  context.Context
	wg   sync.WaitGroup

	mu      sync.Mutex
	workers map[types.UID]*podWorker
	nextIP  uint32
	events  map[string][]Event // "ns/name" → events
	order   []string           // keys of events, oldest first
}

func startRuntime(ctx context.Context, c *Cluster, opts Options) (*Runtime, error) {
	if opts.RestartBackoff <= 0 {
		opts.RestartBackoff = time.Second
	}
	r := &Runtime{c: c, opts: opts, ctx: ctx, workers: make(map[types.UID]*podWorker), events: make(map[string][]Event), nextIP: 2}
	if err := os.MkdirAll(filepath.Join(c.Dir, "pods"), 0o700); err != nil {
		return nil, err
	}
	factory := informers.NewSharedInformerFactoryWithOptions(c.Client, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) {
			o.FieldSelector = fields.OneTermEqualSelector("spec.nodeName", NodeName).String()
		}))
	inf := factory.Core().V1().Pods().Informer()
	_, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(obj, false) },
		UpdateFunc: func(_, obj any) { r.observe(obj, false) },
		DeleteFunc: func(obj any) { r.observe(obj, true) },
	})
	if err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	r.wg.Go(func() { <-ctx.Done(); factory.Shutdown() })
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, fmt.Errorf("k8slab: runtime: pod informer did not sync")
	}
	return r, nil
}

// wait waits for every pod worker after the Runtime's ctx ended.
func (r *Runtime) wait() { r.wg.Wait() }

// Events returns what the Runtime recorded of pod namespace/name.
func (r *Runtime) Events(namespace, name string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events[namespace+"/"+name]...)
}

// Pods returns the names of the pods of namespace the Runtime has seen
// bound to the node (running or gone), in the order it saw them.
func (r *Runtime) Pods(namespace string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, k := range r.order {
		if ns, name, _ := strings.Cut(k, "/"); ns == namespace {
			out = append(out, name)
		}
	}
	return out
}

func (r *Runtime) record(ns, name string, e Event) {
	key := ns + "/" + name
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.events[key]; !ok {
		r.order = append(r.order, key)
		if len(r.order) > maxEventPods {
			delete(r.events, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.events[key] = append(r.events[key], e)
}

func (r *Runtime) logf(format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(format, args...)
	}
}

// observe hands a pod event to the pod's worker, starting one for a new
// pod.
func (r *Runtime) observe(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx.Err() != nil {
		return
	}
	w := r.workers[pod.UID]
	if w == nil {
		if deleted || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
			return
		}
		w = r.newWorker(pod)
		r.workers[pod.UID] = w
		r.wg.Go(func() {
			w.run()
			r.mu.Lock()
			delete(r.workers, pod.UID)
			r.mu.Unlock()
		})
	}
	if deleted {
		w.removedOnce.Do(func() { close(w.removed) })
		return
	}
	select { // newest replaces unread
	case <-w.updates:
	default:
	}
	w.updates <- pod
}

// allocIP returns the next unused IP of the pod CIDR (never reused
// within the Cluster's life; a /16 holds 65 000 pods). r.mu is held.
func (r *Runtime) allocIP() (string, error) {
	base := binary.BigEndian.Uint32(r.c.PodCIDR.IP.To4())
	for {
		n := r.nextIP
		r.nextIP++
		if n >= 1<<16-1 {
			return "", fmt.Errorf("k8slab: pod CIDR %s exhausted", r.c.PodCIDR)
		}
		if n&0xff == 0 || n&0xff == 0xff {
			continue
		}
		ip := make(net.IP, 4)
		binary.BigEndian.PutUint32(ip, base+n)
		return ip.String(), nil
	}
}

// podWorker plays one pod, as kubelet's pod worker does: everything
// about the pod happens on its goroutine, in order.
type podWorker struct {
	r        *Runtime
	ns, name string
	uid      types.UID
	updates  chan *corev1.Pod // latest pod from the API
	removed  chan struct{}    // the pod left the API
	exits    chan exitEvent
	probes   chan probeResult
	restarts chan string // container whose back-off ended

	removedOnce sync.Once
	pod         *corev1.Pod
	ip          string
	started     metav1.Time
	terminating bool
	// readyWritten: a status with Ready=True was written (EventReady).
	readyWritten bool
	killAt       <-chan time.Time
	conds        map[corev1.PodConditionType]corev1.PodCondition

	mu         sync.Mutex // guards containers' proc
	containers map[string]*container
	order      []string
}

type container struct {
	spec      corev1.Container
	proc      *exec.Cmd
	cancel    context.CancelFunc // stops its probe and listen loops
	gen       int                // incarnation, for stale probe results
	restarts  int32
	startedAt metav1.Time
	running   bool
	ready     bool
	okRun     int // consecutive probe successes
	failRun   int // consecutive probe failures
	waiting   string
	waitMsg   string
	last      *corev1.ContainerStateTerminated
	backoff   time.Duration
}

type exitEvent struct {
	name string
	gen  int
	code int
	at   time.Time
}

type probeResult struct {
	name string
	gen  int
	ok   bool
}

func (r *Runtime) newWorker(pod *corev1.Pod) *podWorker {
	return &podWorker{
		r: r, ns: pod.Namespace, name: pod.Name, uid: pod.UID,
		updates:    make(chan *corev1.Pod, 1),
		removed:    make(chan struct{}),
		exits:      make(chan exitEvent, 16),
		probes:     make(chan probeResult, 16),
		restarts:   make(chan string, 16),
		containers: make(map[string]*container),
		conds:      make(map[corev1.PodConditionType]corev1.PodCondition),
	}
}

func (w *podWorker) event(kind EventKind, container string) {
	w.r.record(w.ns, w.name, Event{Time: time.Now(), Kind: kind, Container: container})
}

func (w *podWorker) run() {
	ctx := w.r.ctx
	select {
	case w.pod = <-w.updates:
	case <-w.removed:
		return
	case <-ctx.Done():
		return
	}
	w.event(EventBound, "")
	w.r.mu.Lock()
	ip, err := w.r.allocIP()
	w.r.mu.Unlock()
	if err != nil {
		w.r.logf("k8slab: pod %s/%s: %v", w.ns, w.name, err)
		return
	}
	w.ip, w.started = ip, metav1.Now()
	w.mu.Lock()
	for _, c := range w.pod.Spec.Containers {
		w.containers[c.Name] = &container{spec: c, backoff: w.r.opts.RestartBackoff}
		w.order = append(w.order, c.Name)
	}
	w.mu.Unlock()
	w.setCond(corev1.PodReadyToStartContainers, true)
	w.setCond(corev1.PodInitialized, true)
	if w.writeStatus() {
		w.event(EventIP, "")
	}
	for _, n := range w.order {
		w.startContainer(w.containers[n])
	}
	w.writeStatus()
	if w.pod.DeletionTimestamp != nil {
		w.terminate()
	}
	for {
		select {
		case p := <-w.updates:
			w.pod = p
			if p.DeletionTimestamp != nil && !w.terminating {
				w.terminate()
			}
		case e := <-w.exits:
			w.exited(e)
		case pr := <-w.probes:
			w.probed(pr)
		case n := <-w.restarts:
			if ct := w.containers[n]; ct != nil && !w.terminating && !ct.running {
				ct.restarts++
				w.startContainer(ct)
				w.writeStatus()
			}
		case <-w.killAt:
			w.killAll()
		case <-w.removed:
			w.killAll()
			w.waitAll()
			return
		case <-ctx.Done():
			w.killAll()
			w.waitAll()
			return
		}
		if w.terminating && w.allExited() {
			w.finish()
			return
		}
	}
}

// env builds a container's environment as kubelet does (the image's,
// then the container's with $(VAR) expansion and field references),
// then the image's Overrides.
func (w *podWorker) env(img Image, c corev1.Container) []string {
	vals := map[string]string{}
	var out []string
	add := func(k, v string) {
		vals[k] = v
		out = append(out, k+"="+v)
	}
	add("PATH", os.Getenv("PATH"))
	add("HOME", os.TempDir())
	add("HOSTNAME", w.name)
	for _, kv := range img.Env {
		k, v, _ := strings.Cut(kv, "=")
		add(k, v)
	}
	for _, e := range c.Env {
		v := expand(e.Value, vals)
		if e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			v = w.field(e.ValueFrom.FieldRef.FieldPath)
		}
		add(e.Name, v)
	}
	for _, kv := range img.Overrides {
		k, v, _ := strings.Cut(kv, "=")
		add(k, strings.ReplaceAll(v, "$(POD_IP)", w.ip))
	}
	return out
}

func (w *podWorker) field(path string) string {
	switch path {
	case "metadata.name":
		return w.name
	case "metadata.namespace":
		return w.ns
	case "metadata.uid":
		return string(w.uid)
	case "status.podIP":
		return w.ip
	case "status.hostIP":
		return "127.0.0.1"
	case "spec.nodeName":
		return NodeName
	}
	return ""
}

// expand replaces $(VAR) by earlier variables, as kubelet does; $$ is
// a literal $; unknown references stay as written.
func expand(s string, vals map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch {
		case strings.HasPrefix(s[i:], "$$"):
			b.WriteByte('$')
			i++
		case strings.HasPrefix(s[i:], "$("):
			if end := strings.IndexByte(s[i:], ')'); end > 0 {
				if v, ok := vals[s[i+2:i+end]]; ok {
					b.WriteString(v)
					i += end
					continue
				}
			}
			b.WriteByte(s[i])
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// startContainer starts ct's process, or records why it cannot.
func (w *podWorker) startContainer(ct *container) {
	c := ct.spec
	img, ok := w.r.opts.Images[c.Image]
	if !ok {
		ct.waiting, ct.waitMsg = "ErrImagePull", fmt.Sprintf("k8slab: image %q is not one of the Runtime's images", c.Image)
		return
	}
	argv := append(append([]string(nil), img.Entrypoint...), img.Cmd...)
	switch {
	case len(c.Command) > 0:
		argv = append(append([]string(nil), c.Command...), c.Args...)
	case len(c.Args) > 0:
		argv = append(append([]string(nil), img.Entrypoint...), c.Args...)
	}
	env := w.env(img, c)
	vals := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vals[k] = v
	}
	for i := range argv {
		argv[i] = expand(argv[i], vals)
	}
	if len(argv) == 0 {
		ct.waiting, ct.waitMsg = "CreateContainerError", "no command: the image has no entrypoint and the container no command"
		return
	}
	logPath := filepath.Join(w.r.c.Dir, "pods", fmt.Sprintf("%s_%s_%s.log", w.ns, w.name, c.Name))
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		ct.waiting, ct.waitMsg = "CreateContainerError", err.Error()
		return
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = c.WorkingDir
	cmd.SysProcAttr = sysProcAttr()
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		logf.Close()
		pw.Close()
		ct.waiting, ct.waitMsg = "CreateContainerError", err.Error()
		return
	}
	ct.gen++
	gen := ct.gen
	w.mu.Lock()
	ct.proc = cmd
	w.mu.Unlock()
	ct.running, ct.ready, ct.okRun, ct.failRun = true, c.ReadinessProbe == nil, 0, 0
	ct.waiting, ct.waitMsg = "", ""
	ct.startedAt = metav1.Now()
	w.event(EventStarted, c.Name)
	cctx, cancel := context.WithCancel(w.r.ctx)
	ct.cancel = cancel
	go w.copyOutput(pr, logf, c.Name)
	go func() {
		err := cmd.Wait()
		pw.Close()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				code = 128 + int(ws.Signal())
			}
		}
		w.exits <- exitEvent{name: c.Name, gen: gen, code: code, at: time.Now()}
	}()
	if len(c.Ports) > 0 {
		go w.watchListen(cctx, c.Name, int(c.Ports[0].ContainerPort))
	}
	if c.ReadinessProbe != nil {
		go w.probeLoop(cctx, c, gen)
	}
}

func (w *podWorker) copyOutput(r io.Reader, f *os.File, name string) {
	defer f.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		fmt.Fprintln(f, sc.Text())
		w.r.logf("%s/%s/%s: %s", w.ns, w.name, name, sc.Text())
	}
	_, _ = io.Copy(io.Discard, r)
}

// watchListen records when the container's port first accepts a
// connection (for measurements; kubelet has no such step).
func (w *podWorker) watchListen(ctx context.Context, name string, port int) {
	addr := net.JoinHostPort(w.ip, strconv.Itoa(port))
	deadline := time.Now().Add(listenPollBudget)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			w.event(EventListening, name)
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(listenPoll):
		}
	}
}

// probeLoop runs c's readiness probe at its period, from the start
// (initialDelaySeconds honoured), until ctx ends.
func (w *podWorker) probeLoop(ctx context.Context, c corev1.Container, gen int) {
	p := c.ReadinessProbe
	period := defaultProbe
	if p.PeriodSeconds > 0 {
		period = time.Duration(p.PeriodSeconds) * time.Second
	}
	timeout := time.Second
	if p.TimeoutSeconds > 0 {
		timeout = time.Duration(p.TimeoutSeconds) * time.Second
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}}
	defer hc.CloseIdleConnections()
	if d := time.Duration(p.InitialDelaySeconds) * time.Second; d > 0 {
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
	tick := time.NewTicker(period)
	defer tick.Stop()
	for {
		ok := w.probeOnce(ctx, hc, c, p)
		select {
		case w.probes <- probeResult{name: c.Name, gen: gen, ok: ok}:
		case <-ctx.Done():
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (w *podWorker) probeOnce(ctx context.Context, hc *http.Client, c corev1.Container, p *corev1.Probe) bool {
	switch {
	case p.HTTPGet != nil:
		port := resolvePort(c, p.HTTPGet.Port.String())
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(w.ip, port)+p.HTTPGet.Path, nil)
		if err != nil {
			return false
		}
		for _, h := range p.HTTPGet.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 10<<10))
		resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	case p.TCPSocket != nil:
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(w.ip, resolvePort(c, p.TCPSocket.Port.String())), hc.Timeout)
		if err != nil {
			return false
		}
		conn.Close()
		return true
	}
	return false // exec and gRPC probes are not supported: never ready
}

// resolvePort turns a named port of c into its number.
func resolvePort(c corev1.Container, port string) string {
	for _, p := range c.Ports {
		if p.Name == port {
			return strconv.Itoa(int(p.ContainerPort))
		}
	}
	return port
}

func (w *podWorker) probed(pr probeResult) {
	ct := w.containers[pr.name]
	if ct == nil || ct.gen != pr.gen || !ct.running {
		return
	}
	p := ct.spec.ReadinessProbe
	success, failure := max(int(p.SuccessThreshold), 1), max(int(p.FailureThreshold), 1)
	if pr.ok {
		ct.okRun, ct.failRun = ct.okRun+1, 0
	} else {
		ct.okRun, ct.failRun = 0, ct.failRun+1
	}
	was := ct.ready
	switch {
	case pr.ok && ct.okRun >= success:
		ct.ready = true
	case !pr.ok && (ct.failRun >= failure || !ct.ready):
		ct.ready = false
	}
	if ct.ready != was {
		w.writeStatus()
	}
}

func (w *podWorker) exited(e exitEvent) {
	ct := w.containers[e.name]
	if ct == nil || ct.gen != e.gen {
		return
	}
	ct.cancel()
	w.mu.Lock()
	ct.proc = nil
	w.mu.Unlock()
	ct.running, ct.ready = false, false
	reason := "Completed"
	if e.code != 0 {
		reason = "Error"
	}
	ct.last = &corev1.ContainerStateTerminated{ExitCode: int32(e.code), Reason: reason, StartedAt: ct.startedAt, FinishedAt: metav1.NewTime(e.at)}
	w.event(EventExited, e.name)
	if !w.terminating {
		// restartPolicy Always, with doubling back-off (reset after a
		// long enough run).
		if e.at.Sub(ct.startedAt.Time) > 100*w.r.opts.RestartBackoff {
			ct.backoff = w.r.opts.RestartBackoff
		}
		ct.waiting, ct.waitMsg = "CrashLoopBackOff", fmt.Sprintf("back-off %v restarting failed container %s", ct.backoff, e.name)
		delay, name := ct.backoff, e.name
		ct.backoff = min(ct.backoff*2, 10*w.r.opts.RestartBackoff)
		time.AfterFunc(delay, func() {
			select {
			case w.restarts <- name:
			case <-w.r.ctx.Done():
			}
		})
	}
	w.writeStatus()
}

// terminate runs kubelet's shutdown of the pod: for each container at
// once, its preStop hook, then SIGTERM; SIGKILL for what is left when
// the grace period ends.
func (w *podWorker) terminate() {
	w.terminating = true
	w.event(EventTerminating, "")
	grace := 30 * time.Second
	if g := w.pod.DeletionGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	} else if g := w.pod.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	w.killAt = time.After(grace)
	deadline := time.Now().Add(grace)
	for _, n := range w.order {
		ct := w.containers[n]
		if !ct.running {
			continue
		}
		proc, c := ct.proc, ct.spec
		go func() {
			if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
				w.preStop(c, c.Lifecycle.PreStop, deadline)
			}
			_ = proc.Process.Signal(syscall.SIGTERM)
		}()
	}
}

func (w *podWorker) preStop(c corev1.Container, h *corev1.LifecycleHandler, deadline time.Time) {
	ctx, cancel := context.WithDeadline(w.r.ctx, deadline)
	defer cancel()
	switch {
	case h.HTTPGet != nil:
		url := "http://" + net.JoinHostPort(w.ip, resolvePort(c, h.HTTPGet.Port.String())) + h.HTTPGet.Path
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return
		}
		resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Do(req)
		if err != nil {
			w.r.logf("k8slab: %s/%s/%s: preStop %s: %v", w.ns, w.name, c.Name, url, err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	case h.Sleep != nil:
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(h.Sleep.Seconds) * time.Second):
		}
	}
}

func (w *podWorker) killAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ct := range w.containers {
		if ct.proc != nil {
			_ = syscall.Kill(-ct.proc.Process.Pid, syscall.SIGKILL)
		}
	}
}

// waitAll waits until every process exited (after killAll).
func (w *podWorker) waitAll() {
	for !w.allExited() {
		w.exited(<-w.exits)
	}
}

func (w *podWorker) allExited() bool {
	for _, ct := range w.containers {
		if ct.running {
			return false
		}
	}
	return true
}

// finish writes the final status and deletes the pod, as kubelet does
// once every container stopped.
func (w *podWorker) finish() {
	w.writeStatus()
	zero := int64(0)
	err := w.r.c.Client.CoreV1().Pods(w.ns).Delete(context.Background(), w.name, metav1.DeleteOptions{
		GracePeriodSeconds: &zero, Preconditions: &metav1.Preconditions{UID: &w.uid},
	})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		w.r.logf("k8slab: delete pod %s/%s: %v", w.ns, w.name, err)
	}
	w.event(EventRemoved, "")
}

func (w *podWorker) setCond(t corev1.PodConditionType, ok bool) bool {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	old, had := w.conds[t]
	if had && old.Status == s {
		return false
	}
	w.conds[t] = corev1.PodCondition{Type: t, Status: s, LastTransitionTime: metav1.Now()}
	return true
}

// writeStatus patches the pod's status from the worker's state; it
// reports whether the write succeeded.
func (w *podWorker) writeStatus() bool {
	ready := len(w.order) > 0
	var statuses []corev1.ContainerStatus
	for _, n := range w.order {
		ct := w.containers[n]
		ready = ready && ct.running && ct.ready
		cs := corev1.ContainerStatus{
			Name: n, Image: ct.spec.Image, ImageID: "k8slab://" + ct.spec.Image,
			Ready: ct.running && ct.ready, Started: new(ct.running), RestartCount: ct.restarts,
		}
		if ct.last != nil {
			cs.LastTerminationState.Terminated = ct.last
		}
		switch {
		case ct.running:
			cs.State.Running = &corev1.ContainerStateRunning{StartedAt: ct.startedAt}
			cs.ContainerID = "k8slab://" + strconv.Itoa(ct.gen) + "-" + n
		case w.terminating && ct.last != nil:
			cs.State.Terminated = ct.last
		default:
			reason := ct.waiting
			if reason == "" {
				reason = "ContainerCreating"
			}
			cs.State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: ct.waitMsg}
		}
		statuses = append(statuses, cs)
	}
	w.setCond(corev1.ContainersReady, ready)
	w.setCond(corev1.PodReady, ready)
	phase := corev1.PodPending
	for _, n := range w.order {
		if w.containers[n].running || w.containers[n].last != nil {
			phase = corev1.PodRunning
		}
	}
	var conds []corev1.PodCondition
	for _, t := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		if c, ok := w.conds[t]; ok {
			conds = append(conds, c)
		}
	}
	status := corev1.PodStatus{
		Phase: phase, Conditions: conds,
		HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}},
		PodIP: w.ip, PodIPs: []corev1.PodIP{{IP: w.ip}},
		StartTime: &w.started, ContainerStatuses: statuses,
	}
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return false
	}
	_, err = w.r.c.Client.CoreV1().Pods(w.ns).Patch(context.Background(), w.name, types.StrategicMergePatchType, body, metav1.PatchOptions{FieldManager: "k8slab-kubelet"}, "status")
	if err != nil {
		if !apierrors.IsNotFound(err) {
			w.r.logf("k8slab: status of %s/%s: %v", w.ns, w.name, err)
		}
		return false
	}
	if ready && !w.readyWritten {
		w.readyWritten = true
		w.event(EventReady, "")
	}
	return true
}
