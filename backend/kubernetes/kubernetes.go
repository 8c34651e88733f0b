package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/engineopt"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// Backend runs revisions as Deployments in one namespace. Create it
// with New; it is safe for concurrent use. Close stops its informers.
type Backend struct {
	opts   Options
	ns     string
	client kubernetes.Interface
	log    *slog.Logger

	factory     informers.SharedInformerFactory
	pods        cache.SharedIndexInformer
	deps        cache.SharedIndexInformer
	depList     appslisters.DeploymentLister
	ctx         context.Context // ends at Close; parent of every DrainFunc call and probe
	probeClient *http.Client
	cancel      context.CancelFunc
	drains      sync.WaitGroup

	mu     sync.Mutex
	revs   map[string]*revState // revisions watched or with pods
	closed bool
}

// revState is what the backend tracks of one revision.
type revState struct {
	name string
	bc   backend.Broadcaster
	// gone: the Deployment was deleted; once its pods are gone too and
	// no DrainFunc is running, the watches close.
	gone   bool
	drains map[string]*drainCall  // instance ID → its DrainFunc call
	probes map[string]*earlyProbe // instance ID → the backend's own readiness probe
}

// earlyProbe is the backend's own probe of a new instance's queue-proxy
// (see Options.NoEarlyReadiness).
type earlyProbe struct {
	stop      chan struct{} // closed when no longer needed
	passed    bool          // the probe succeeded
	kubelet   bool          // kubelet reported the pod Ready since: it decides from then on
	listening time.Time     // first sign the app accepts connections (probe passed, or pod Ready)
}

// drainCall is one DrainFunc call for a terminating pod.
type drainCall struct {
	inst  backend.Instance // as last published
	grace time.Duration    // the pod's grace period
	done  bool
}

const revisionIndex = "zeroscale-revision"

var _ backend.Reserver = (*Backend)(nil)

// New returns a Backend for the cluster and namespace opts name. It
// starts one pod informer and one Deployment informer for the
// namespace, both selecting LabelManagedBy=zeroscale; it does not wait
// for them (Watch and Status do, up to Options.SyncTimeout).
func New(opts Options) (*Backend, error) {
	opts, cfg, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	client, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client: %w", err)
	}
	return newBackend(opts, client)
}

func newBackend(opts Options, client kubernetes.Interface) (*Backend, error) {
	b := &Backend{opts: opts, ns: opts.Namespace, client: client, log: opts.Logger, revs: make(map[string]*revState)}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.probeClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	b.factory = informers.NewSharedInformerFactoryWithOptions(client, 0,
		informers.WithNamespace(b.ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = LabelManagedBy + "=" + managedByValue }),
		informers.WithTransform(stripManagedFields))
	b.pods = b.factory.Core().V1().Pods().Informer()
	if err := b.pods.AddIndexers(cache.Indexers{revisionIndex: func(obj any) ([]string, error) {
		if p, ok := obj.(*corev1.Pod); ok {
			return []string{p.Labels[LabelRevision]}, nil
		}
		return nil, nil
	}}); err != nil {
		return nil, fmt.Errorf("kubernetes: pod index: %w", err)
	}
	deps := b.factory.Apps().V1().Deployments()
	b.deps, b.depList = deps.Informer(), deps.Lister()
	onPod := func(obj any) {
		if p := podOf(obj); p != nil {
			b.refresh(p.Labels[LabelRevision])
		}
	}
	if _, err := b.pods.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: onPod, UpdateFunc: func(_, obj any) { onPod(obj) }, DeleteFunc: onPod,
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: pod handler: %w", err)
	}
	if _, err := b.deps.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { b.deploymentSeen(obj, false) },
		DeleteFunc: func(obj any) { b.deploymentSeen(obj, true) },
	}); err != nil {
		return nil, fmt.Errorf("kubernetes: deployment handler: %w", err)
	}
	for _, inf := range []cache.SharedIndexInformer{b.pods, b.deps} {
		_ = inf.SetWatchErrorHandlerWithContext(func(_ context.Context, _ *cache.Reflector, err error) {
			b.log.Warn("kubernetes: watch failed, retrying", "namespace", b.ns, "err", err)
		})
	}
	b.factory.Start(b.ctx.Done())
	return b, nil
}

// Namespace is where the backend's Deployments live.
func (b *Backend) Namespace() string { return b.ns }

// Deploy creates rev's Deployment at replicas 0 (see the package doc
// for its pod template). Deploying the same revision again changes
// nothing; a Deployment of that name with another spec hash, or not
// made by this package, is ErrInvalidArgument; one being removed is
// ErrTransient.
func (b *Backend) Deploy(ctx context.Context, rev revision.Revision) error {
	if rev.IsZero() {
		return fmt.Errorf("kubernetes: Deploy: %w: the zero Revision", backend.ErrInvalidArgument)
	}
	name := rev.Name()
	if err := checkSpec(rev.Spec().WithDefaults()); err != nil {
		return fmt.Errorf("kubernetes: Deploy %s: %w", name, err)
	}
	if err := b.deployStandard(ctx, rev); err != nil {
		return err
	}
	// The reserved Deployment (backend.Reserver), at replicas 0: no pod
	// until ScaleReserved.
	_, err := b.client.AppsV1().Deployments(b.ns).Create(ctx, b.deploymentOf(rev, true), metav1.CreateOptions{FieldManager: b.opts.FieldManager})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return apiError("Deploy", name+ReservedSuffix, err)
	}
	return nil
}

// deployStandard is Deploy of rev's standard Deployment.
func (b *Backend) deployStandard(ctx context.Context, rev revision.Revision) error {
	name := rev.Name()
	d := b.deployment(rev)
	_, err := b.client.AppsV1().Deployments(b.ns).Create(ctx, d, metav1.CreateOptions{FieldManager: b.opts.FieldManager})
	if err == nil {
		b.log.Info("kubernetes: deployed", "revision", name, "namespace", b.ns)
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return apiError("Deploy", name, err)
	}
	cur, err := b.client.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return fmt.Errorf("kubernetes: Deploy %s: %w: its Deployment was being removed; retry", name, backend.ErrTransient)
	}
	if err != nil {
		return apiError("Deploy", name, err)
	}
	switch {
	case cur.Labels[LabelManagedBy] != managedByValue || cur.Labels[LabelRevision] != name:
		return fmt.Errorf("kubernetes: Deploy %s: %w: Deployment %s/%s exists and was not made by zeroscale (no label %s=%s)",
			name, backend.ErrInvalidArgument, b.ns, name, LabelManagedBy, managedByValue)
	case cur.DeletionTimestamp != nil:
		return fmt.Errorf("kubernetes: Deploy %s: %w: its Deployment is being removed; retry", name, backend.ErrTransient)
	case cur.Annotations[AnnotationSpecHash] != rev.SpecHash():
		return fmt.Errorf("kubernetes: Deploy %s: %w: already deployed with another spec (%s %s, this one %s); a changed spec needs a new revision name",
			name, backend.ErrInvalidArgument, AnnotationSpecHash, cur.Annotations[AnnotationSpecHash], rev.SpecHash())
	}
	return nil
}

// Scale sets the Deployment's replicas with one merge patch of its
// scale subresource (no read-modify-write, so no conflict) and returns;
// the ReplicaSet controller converges. On scale-down it first gives
// the revision's pods their deletion cost (see the package doc for the
// order that results).
func (b *Backend) Scale(ctx context.Context, name string, n int) error {
	if n < 0 || n > math.MaxInt32 {
		return fmt.Errorf("kubernetes: Scale %s: %w: n = %d, want 0–%d", name, backend.ErrInvalidArgument, n, math.MaxInt32)
	}
	if d, err := b.depList.Deployments(b.ns).Get(name); err == nil {
		if d.DeletionTimestamp != nil {
			return fmt.Errorf("kubernetes: Scale %s: %w: being removed", name, backend.ErrNotDeployed)
		}
		if d.Spec.Replicas != nil && int(*d.Spec.Replicas) > n {
			b.setDeletionCosts(ctx, d)
		}
	}
	patch := []byte(`{"spec":{"replicas":` + strconv.Itoa(n) + `}}`)
	_, err := b.client.AppsV1().Deployments(b.ns).Patch(ctx, name, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: b.opts.FieldManager}, "scale")
	return apiError("Scale", name, err)
}

// ScaleReserved sets the replicas of the revision's reserved Deployment
// (ReservedSuffix), 0 or 1 (backend.Reserver): its pod runs the app with
// the reserved profile's CPU and memory as requests and limits, labelled
// LabelKind "reserved", and is drained like any pod.
func (b *Backend) ScaleReserved(ctx context.Context, name string, n int) error {
	if err := engineopt.ReservedCount("kubernetes", name, n); err != nil {
		return err
	}
	if d, err := b.depList.Deployments(b.ns).Get(name); err == nil && d.DeletionTimestamp != nil {
		return fmt.Errorf("kubernetes: ScaleReserved %s: %w: being removed", name, backend.ErrNotDeployed)
	}
	patch := []byte(`{"spec":{"replicas":` + strconv.Itoa(n) + `}}`)
	_, err := b.client.AppsV1().Deployments(b.ns).Patch(ctx, name+ReservedSuffix, types.MergePatchType, patch,
		metav1.PatchOptions{FieldManager: b.opts.FieldManager}, "scale")
	return apiError("ScaleReserved", name, err)
}

// setDeletionCosts gives every running pod of d without one a
// pod-deletion-cost of minus its age in seconds relative to d, so the
// ReplicaSet controller deletes the youngest first. Best effort: a
// failed patch only loses the ordering, so it is logged, not returned.
func (b *Backend) setDeletionCosts(ctx context.Context, d *appsv1.Deployment) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for _, p := range b.podsOf(d.Name) {
		if p.DeletionTimestamp != nil || p.Annotations[annotationDeletionCost] != "" {
			continue
		}
		age := p.CreationTimestamp.Sub(d.CreationTimestamp.Time) / time.Second
		cost := -min(max(int64(age), 0), math.MaxInt32)
		patch := []byte(`{"metadata":{"annotations":{"` + annotationDeletionCost + `":"` + strconv.FormatInt(cost, 10) + `"}}}`)
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := b.client.CoreV1().Pods(b.ns).Patch(ctx, p.Name, types.MergePatchType, patch,
				metav1.PatchOptions{FieldManager: b.opts.FieldManager})
			if err != nil && !apierrors.IsNotFound(err) {
				b.log.Warn("kubernetes: pod-deletion-cost not set; scale-down falls back to Kubernetes' order", "pod", p.Name, "err", err)
			}
		})
	}
	wg.Wait()
}

// Remove deletes the Deployment with foreground propagation: the API
// keeps it (with a deletion timestamp) until its pods are gone, so a
// second Remove meanwhile succeeds and Deploy of the name is
// ErrTransient. The watches close once the Deployment, its pods and
// their DrainFunc calls are all gone.
func (b *Backend) Remove(ctx context.Context, name string) error {
	fg := metav1.DeletePropagationForeground
	// The reserved Deployment first: its pods are the revision's too
	// (LabelRevision), so the watches wait for them as well.
	if err := b.client.AppsV1().Deployments(b.ns).Delete(ctx, name+ReservedSuffix, metav1.DeleteOptions{PropagationPolicy: &fg}); err != nil && !apierrors.IsNotFound(err) {
		return apiError("Remove", name+ReservedSuffix, err)
	}
	err := b.client.AppsV1().Deployments(b.ns).Delete(ctx, name, metav1.DeleteOptions{PropagationPolicy: &fg})
	if apierrors.IsNotFound(err) {
		b.mu.Lock()
		_, busy := b.revs[name]
		b.mu.Unlock()
		if busy && len(b.podsOf(name)) > 0 {
			return nil // its last pods are still stopping
		}
	}
	if err == nil {
		b.log.Info("kubernetes: removing", "revision", name, "namespace", b.ns)
	}
	return apiError("Remove", name, err)
}

// Watch streams whole snapshots of the revision's instances: one per
// pod whose containers run and which has an IP (see the package doc).
func (b *Backend) Watch(ctx context.Context, name string) (<-chan []backend.Instance, error) {
	if err := b.waitSynced(ctx); err != nil {
		return nil, fmt.Errorf("kubernetes: Watch %s: %w", name, err)
	}
	d, err := b.depList.Deployments(b.ns).Get(name)
	if apierrors.IsNotFound(err) {
		// Deployed a moment ago: the informer may not have it yet.
		d, err = b.client.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return nil, apiError("Watch", name, err)
	}
	if d.Labels[LabelManagedBy] != managedByValue {
		return nil, fmt.Errorf("kubernetes: Watch %s: %w: Deployment %s/%s was not made by zeroscale", name, backend.ErrNotDeployed, b.ns, name)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("kubernetes: Watch %s: %w: the backend is closed", name, backend.ErrTransient)
	}
	rs := b.revs[name]
	if rs == nil {
		rs = b.track(name, false)
		b.publishLocked(rs)
	}
	return rs.bc.Watch(ctx), nil
}

// waitSynced waits until both informers listed once.
func (b *Backend) waitSynced(ctx context.Context) error {
	if b.pods.HasSynced() && b.deps.HasSynced() {
		return nil
	}
	sctx, cancel := context.WithTimeout(ctx, b.opts.SyncTimeout)
	defer cancel()
	if cache.WaitForCacheSync(sctx.Done(), b.pods.HasSynced, b.deps.HasSynced) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return fmt.Errorf("%w: pods and Deployments of namespace %s not listed within %v: is the API server reachable, and may this identity list and watch them?",
		backend.ErrTransient, b.ns, b.opts.SyncTimeout)
}

// Close stops the informers, closes every watch, cancels the DrainFunc
// calls in progress and waits for them. It leaves the Deployments in
// the cluster (they are the cluster's state, not this process's); a
// host removes its revisions first if it wants them gone. Close is
// idempotent.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	revs := b.revs
	b.revs = nil
	b.mu.Unlock()
	b.cancel()
	for _, rs := range revs {
		rs.bc.Close()
	}
	b.factory.Shutdown()
	b.drains.Wait()
	return nil
}

// podOf returns the pod in an informer event, nil if there is none.
func podOf(obj any) *corev1.Pod {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	p, _ := obj.(*corev1.Pod)
	return p
}

// podsOf returns the pods of revision name in the informer's cache.
func (b *Backend) podsOf(name string) []*corev1.Pod {
	objs, err := b.pods.GetIndexer().ByIndex(revisionIndex, name)
	if err != nil {
		return nil
	}
	out := make([]*corev1.Pod, 0, len(objs))
	for _, o := range objs {
		if p, ok := o.(*corev1.Pod); ok {
			out = append(out, p)
		}
	}
	return out
}

// deploymentSeen records that a Deployment was added (again) or
// deleted.
func (b *Backend) deploymentSeen(obj any, deleted bool) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if d.Labels[LabelKind] != "" {
		// A reserved Deployment: the revision is its standard one's.
		if rs := b.revs[d.Labels[LabelRevision]]; rs != nil && !b.closed {
			b.publishLocked(rs)
		}
		return
	}
	if rs := b.revs[d.Name]; rs != nil && !b.closed {
		rs.gone = deleted
		b.publishLocked(rs)
	}
}

// refresh publishes the current snapshot of revision name.
func (b *Backend) refresh(name string) {
	if name == "" {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	rs := b.revs[name]
	if rs == nil {
		if len(b.podsOf(name)) == 0 {
			return
		}
		_, err := b.depList.Deployments(b.ns).Get(name)
		rs = b.track(name, err != nil)
	}
	b.publishLocked(rs)
}

// track starts tracking revision name. b.mu is held.
func (b *Backend) track(name string, gone bool) *revState {
	rs := &revState{name: name, gone: gone, drains: make(map[string]*drainCall), probes: make(map[string]*earlyProbe)}
	b.revs[name] = rs
	return rs
}

// publishLocked computes rs's snapshot from the pod cache, starts the
// DrainFunc of every newly terminating instance once that snapshot is
// published, and forgets rs once its Deployment and pods are gone.
// b.mu is held.
func (b *Backend) publishLocked(rs *revState) {
	pods := b.podsOf(rs.name)
	snap := make([]backend.Instance, 0, len(pods))
	live := make(map[string]bool, len(pods))
	var start []*drainCall
	for _, p := range pods {
		in, ok := instanceOf(p, rs.name)
		if !ok {
			continue
		}
		live[in.ID] = true
		b.earlyReady(rs, &in)
		if in.Draining {
			dc := rs.drains[in.ID]
			if dc == nil {
				dc = &drainCall{grace: podGrace(p)}
				rs.drains[in.ID] = dc
				start = append(start, dc)
			}
			dc.inst = in
		}
		snap = append(snap, in)
	}
	for id, ep := range rs.probes {
		if !live[id] {
			ep.close()
			delete(rs.probes, id)
		}
	}
	for id, dc := range rs.drains {
		switch {
		case live[id]:
		case dc.done:
			delete(rs.drains, id)
		default:
			// Stopped before its DrainFunc returned (the pod's grace ran
			// out, or it crashed): listed, not ready, until the call
			// returns, so a watcher sees the DrainFunc end first.
			in := dc.inst
			in.Ready = false
			snap = append(snap, in)
		}
	}
	rs.bc.Publish(snap)
	for _, dc := range start {
		b.startDrain(rs, dc)
	}
	if rs.gone && len(pods) == 0 && len(rs.drains) == 0 {
		rs.bc.Close()
		delete(b.revs, rs.name)
	}
}

// startDrain calls the DrainFunc for dc's instance in its own
// goroutine (never under b.mu: the DrainFunc may call Watch). b.mu is
// held.
func (b *Backend) startDrain(rs *revState, dc *drainCall) {
	inst := dc.inst
	timeout := b.opts.DrainTimeout
	if timeout == 0 {
		timeout = dc.grace
	}
	b.drains.Go(func() {
		if b.opts.Drain != nil {
			ctx, cancel := context.WithTimeout(b.ctx, timeout)
			err := b.opts.Drain(ctx, inst)
			cancel()
			if err != nil && !errors.Is(err, context.Canceled) {
				b.log.Warn("kubernetes: drain incomplete", "revision", inst.Revision, "instance", inst.ID, "err", err)
			}
		}
		b.mu.Lock()
		dc.done = true
		b.mu.Unlock()
		b.refresh(rs.name)
	})
}

// podGrace is how long Kubernetes gives the terminating pod p.
func podGrace(p *corev1.Pod) time.Duration {
	switch {
	case p.DeletionGracePeriodSeconds != nil:
		return time.Duration(*p.DeletionGracePeriodSeconds) * time.Second
	case p.Spec.TerminationGracePeriodSeconds != nil:
		return time.Duration(*p.Spec.TerminationGracePeriodSeconds) * time.Second
	}
	return 30 * time.Second // Kubernetes' default
}

// instanceOf is pod p as an instance of rev, if it is one: it has an IP
// and both its containers run. Its ID is the pod name plus the sum of
// the containers' restart counts, so a restart is a new instance.
func instanceOf(p *corev1.Pod, rev string) (backend.Instance, bool) {
	if p.Status.PodIP == "" {
		return backend.Instance{}, false
	}
	var user, queue *corev1.ContainerStatus
	for i := range p.Status.ContainerStatuses {
		switch cs := &p.Status.ContainerStatuses[i]; cs.Name {
		case UserContainer:
			user = cs
		case QueueContainer:
			queue = cs
		}
	}
	if user == nil || queue == nil || user.State.Running == nil || queue.State.Running == nil {
		return backend.Instance{}, false
	}
	started := user.State.Running.StartedAt.Time
	if t := queue.State.Running.StartedAt.Time; t.After(started) {
		started = t
	}
	if started.IsZero() {
		started = p.CreationTimestamp.Time
	}
	return backend.Instance{
		ID:       p.Name + "-" + strconv.Itoa(int(user.RestartCount+queue.RestartCount)),
		Revision: rev,
		Address:  podAddress(p.Status.PodIP, QueueServingPort),
		Ready:    podReady(p),
		Draining: p.DeletionTimestamp != nil,
		Started:  started,
		Reserved: p.Labels[LabelKind] == reservedKind,
	}, true
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// stripManagedFields drops what the backend never reads from cached
// objects, to keep the informers' memory down.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		m.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}

// earlyReady sets in's readiness: the pod's Ready condition, or, until
// kubelet has reported the pod Ready once, the backend's own probe of
// the instance's queue-proxy health path, which starts (every
// earlyProbeInterval) as soon as the instance appears. Kubelet probes at
// most once a second and its first probe usually comes before the app
// listens, so this saves about a second of every cold start; Knative's
// activator probes new pods itself for the same reason. b.mu is held.
func (b *Backend) earlyReady(rs *revState, in *backend.Instance) {
	if in.Draining {
		if ep := rs.probes[in.ID]; ep != nil {
			in.Listening = ep.listening
		}
		return
	}
	ep := rs.probes[in.ID]
	if ep == nil {
		ep = &earlyProbe{stop: make(chan struct{})}
		rs.probes[in.ID] = ep
		if !in.Ready && !b.opts.NoEarlyReadiness {
			inst := *in
			b.drains.Go(func() { b.probe(rs.name, inst, ep) })
		}
	}
	if in.Ready {
		ep.kubelet = true
		ep.close()
		if ep.listening.IsZero() {
			ep.listening = time.Now() // no earlier sign of the app listening
		}
	}
	in.Ready = in.Ready || (ep.passed && !ep.kubelet)
	in.Listening = ep.listening
}

func (ep *earlyProbe) close() {
	select {
	case <-ep.stop:
	default:
		close(ep.stop)
	}
}

// Bounds of the backend's own readiness probe.
const (
	earlyProbeInterval   = 50 * time.Millisecond
	earlyRecheckInterval = time.Second
	earlyProbeTimeout    = time.Second
)

// probe polls in's health path, every earlyProbeInterval until it
// answers 200 and then every earlyRecheckInterval (so a verdict that
// turns bad is withdrawn), until ep is stopped (kubelet reported the pod
// Ready, or the instance left) or the backend closes.
func (b *Backend) probe(rev string, in backend.Instance, ep *earlyProbe) {
	url := "http://" + in.Address + queueproxy.HealthPath
	passed := false
	for {
		ctx, cancel := context.WithTimeout(b.ctx, earlyProbeTimeout)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		ok := false
		if err == nil {
			if resp, err := b.probeClient.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<10))
				resp.Body.Close()
				ok = resp.StatusCode == http.StatusOK
			}
		}
		cancel()
		if ok != passed {
			passed = ok
			b.mu.Lock()
			ep.passed = ok
			if ok && ep.listening.IsZero() {
				ep.listening = time.Now()
			}
			b.mu.Unlock()
			b.refresh(rev)
		}
		wait := earlyProbeInterval
		if passed {
			wait = earlyRecheckInterval
		}
		select {
		case <-time.After(wait):
		case <-ep.stop:
			return
		case <-b.ctx.Done():
			return
		}
	}
}
