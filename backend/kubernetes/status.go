package kubernetes

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale/backend"
)

// Status bounds and sizes.
const (
	// statusLogLines is how many of a crash-looping app's last log lines
	// Status fetches (from its previous run, through the pods/log API).
	statusLogLines   = 20
	statusLogTimeout = 2 * time.Second
)

// Status reports the revision as Kubernetes sees it: the Deployment's
// replicas and failure conditions, and per pod its state (Starting,
// Running, Draining, BackOff when a container waits to restart),
// restarts, the app container's last exit and, for a crash loop, the
// last lines of its previous run's log. Message is the first problem
// Kubernetes reports: a ReplicaSet failure (quota, admission), a missed
// progress deadline, an unschedulable pod, an image that cannot be
// pulled.
func (b *Backend) Status(ctx context.Context, name string) (backend.EngineStatus, error) {
	if err := b.waitSynced(ctx); err != nil {
		return backend.EngineStatus{}, fmt.Errorf("kubernetes: Status %s: %w", name, err)
	}
	d, err := b.depList.Deployments(b.ns).Get(name)
	if apierrors.IsNotFound(err) {
		d, err = b.client.AppsV1().Deployments(b.ns).Get(ctx, name, metav1.GetOptions{})
	}
	if err != nil {
		return backend.EngineStatus{}, apiError("Status", name, err)
	}
	st := backend.EngineStatus{Revision: name, Removing: d.DeletionTimestamp != nil, Message: deploymentProblem(d)}
	if d.Spec.Replicas != nil && !st.Removing {
		st.Desired = int(*d.Spec.Replicas)
	}
	for _, p := range b.podsOf(name) {
		is, problem := b.instanceStatus(ctx, p, name)
		st.Instances = append(st.Instances, is)
		if st.Message == "" {
			st.Message = problem
		}
	}
	return st, nil
}

// deploymentProblem is the Deployment's failure condition, if any.
func deploymentProblem(d *appsv1.Deployment) string {
	for _, c := range d.Status.Conditions {
		switch {
		case c.Type == appsv1.DeploymentReplicaFailure && c.Status == corev1.ConditionTrue,
			c.Type == appsv1.DeploymentProgressing && c.Status == corev1.ConditionFalse:
			return fmt.Sprintf("Deployment %s: %s: %s", c.Type, c.Reason, c.Message)
		}
	}
	return ""
}

// instanceStatus describes pod p, and returns the problem it shows.
func (b *Backend) instanceStatus(ctx context.Context, p *corev1.Pod, rev string) (backend.InstanceStatus, string) {
	var restarts int32
	var user *corev1.ContainerStatus
	waiting := ""
	for i := range p.Status.ContainerStatuses {
		cs := &p.Status.ContainerStatuses[i]
		restarts += cs.RestartCount
		if cs.Name == UserContainer {
			user = cs
		}
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" && waiting == "" {
			waiting = fmt.Sprintf("pod %s, container %s: %s", p.Name, cs.Name, w.Reason)
			if w.Message != "" {
				waiting += ": " + w.Message
			}
		}
	}
	in, ok := instanceOf(p, rev)
	if ok && !in.Ready {
		b.mu.Lock()
		if rs := b.revs[rev]; rs != nil {
			if ep := rs.probes[in.ID]; ep != nil && ep.passed && !ep.kubelet && !in.Draining {
				in.Ready = true // as Watch reports it: the early probe passed
			}
		}
		b.mu.Unlock()
	}
	if !ok {
		in = backend.Instance{ID: p.Name + "-" + strconv.Itoa(int(restarts)), Revision: rev, Started: p.CreationTimestamp.Time}
		if p.Status.PodIP != "" {
			in.Address = podAddress(p.Status.PodIP, QueueServingPort)
		}
		in.Draining = p.DeletionTimestamp != nil
	}
	is := backend.InstanceStatus{
		Instance: in,
		Restarts: int(restarts),
		Detail:   fmt.Sprintf("pod %s/%s on node %q, phase %s", p.Namespace, p.Name, p.Spec.NodeName, p.Status.Phase),
	}
	if p.Status.PodIP != "" {
		port := 0
		for _, c := range p.Spec.Containers {
			if c.Name == UserContainer && len(c.Ports) > 0 {
				port = int(c.Ports[0].ContainerPort)
			}
		}
		is.AppAddress = podAddress(p.Status.PodIP, port)
	}
	if user != nil {
		if t := user.LastTerminationState.Terminated; t != nil {
			is.LastExit = &backend.Exit{Code: int(t.ExitCode), Reason: strings.TrimSpace(t.Reason + " " + t.Message), Time: t.FinishedAt.Time}
		}
	}
	switch {
	case in.Draining:
		is.State = backend.InstanceDraining
	case !ok && restarts > 0:
		is.State = backend.InstanceBackOff
		if is.LastExit != nil {
			is.Output = b.previousLog(ctx, p.Name)
			is.LastExit.Output = is.Output
		}
	case in.Ready:
		is.State = backend.InstanceRunning
	default:
		is.State = backend.InstanceStarting
	}
	problem := waiting
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			problem = fmt.Sprintf("pod %s not scheduled: %s: %s", p.Name, c.Reason, c.Message)
		}
	}
	return is, problem
}

// previousLog returns the last statusLogLines lines of the app
// container's previous run, or nil when the cluster cannot say.
func (b *Backend) previousLog(ctx context.Context, pod string) []string {
	ctx, cancel := context.WithTimeout(ctx, statusLogTimeout)
	defer cancel()
	tail := int64(statusLogLines)
	rc, err := b.client.CoreV1().Pods(b.ns).GetLogs(pod, &corev1.PodLogOptions{Container: UserContainer, Previous: true, TailLines: &tail}).Stream(ctx)
	if err != nil {
		return nil
	}
	defer rc.Close()
	var out []string
	sc := bufio.NewScanner(rc)
	for sc.Scan() && len(out) < statusLogLines {
		out = append(out, sc.Text())
	}
	return out
}
