package kubernetes_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/backendtest"
	"github.com/zeroscale/zeroscale/backend/kubernetes"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

const waitFor = 30 * time.Second

func newRevision(t *testing.T, config string, spec revision.Spec) revision.Revision {
	t.Helper()
	rev, err := revision.New(config, config+"-00001", 1, spec, time.Unix(0, 0))
	require.NoError(t, err)
	return rev
}

// latest keeps the newest snapshot of a watch.
func latest(t *testing.T, ch <-chan []backend.Instance) func() []backend.Instance {
	var cur []backend.Instance
	return func() []backend.Instance {
		for {
			select {
			case s, ok := <-ch:
				if !ok {
					return cur
				}
				cur = s
			default:
				return cur
			}
		}
	}
}

// up deploys revision config-00001 of the test app on a new backend,
// scales it to 1 and returns once that instance serves, with a func
// returning the newest snapshot.
func up(t *testing.T, config string) (*kubernetes.Backend, revision.Revision, func() []backend.Instance) {
	t.Helper()
	b := newBackend(t, kubernetes.Options{})
	ctx := t.Context()
	rev := newRevision(t, config, revision.Spec{Image: appImage})
	require.NoError(t, b.Deploy(ctx, rev))
	ch, err := b.Watch(ctx, rev.Name())
	require.NoError(t, err)
	cur := latest(t, ch)
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	require.Eventually(t, func() bool { return len(serving(cur())) == 1 }, waitFor, 20*time.Millisecond)
	return b, rev, cur
}

// serving returns the instances of s that take requests.
func serving(s []backend.Instance) []backend.Instance {
	var out []backend.Instance
	for _, in := range s {
		if in.Serving() {
			out = append(out, in)
		}
	}
	return out
}

func TestDeploymentTemplate(t *testing.T) {
	b := newBackend(t, kubernetes.Options{QuietPeriod: 5 * time.Second})
	spec := revision.Spec{
		Image: appImage, Port: 8081, Env: []revision.EnvVar{{Name: "GREETING", Value: "hi"}},
		Timeouts:  revision.Timeouts{Request: 60 * time.Second},
		Readiness: revision.Probe{HTTPPath: "/healthz", Period: 2 * time.Second},
		Resources: revision.Resources{CPURequestMillis: 100, MemoryLimitBytes: 64 << 20},
	}
	rev := newRevision(t, "tmpl", spec)
	ctx := t.Context()
	require.NoError(t, b.Deploy(ctx, rev))
	require.NoError(t, b.Deploy(ctx, rev), "Deploy of the same revision again")

	c := lab.Cluster(t)
	d, err := c.Client.AppsV1().Deployments(b.Namespace()).Get(ctx, rev.Name(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(0), *d.Spec.Replicas)
	assert.Equal(t, rev.SpecHash(), d.Annotations[kubernetes.AnnotationSpecHash])
	assert.Equal(t, rev.Name(), d.Spec.Selector.MatchLabels[kubernetes.LabelRevision])
	pod := d.Spec.Template.Spec
	assert.Equal(t, int64(65), *pod.TerminationGracePeriodSeconds, "request timeout + quiet period")
	require.Len(t, pod.Containers, 2)
	user, qp := pod.Containers[0], pod.Containers[1]
	assert.Equal(t, kubernetes.UserContainer, user.Name)
	assert.Equal(t, appImage, user.Image)
	assert.Contains(t, user.Env, corev1.EnvVar{Name: "PORT", Value: "8081"})
	assert.Contains(t, user.Env, corev1.EnvVar{Name: "GREETING", Value: "hi"})
	assert.Equal(t, "100m", user.Resources.Requests.Cpu().String())
	assert.Equal(t, "64Mi", user.Resources.Limits.Memory().String())
	require.NotNil(t, user.Lifecycle.PreStop.HTTPGet)
	assert.Equal(t, "/zeroscale/wait-for-drain", user.Lifecycle.PreStop.HTTPGet.Path)
	assert.Equal(t, kubernetes.QueueMetricsPort, user.Lifecycle.PreStop.HTTPGet.Port.IntValue())
	assert.Equal(t, kubernetes.QueueContainer, qp.Name)
	assert.Equal(t, queueImage, qp.Image)
	for _, c := range []corev1.Container{user, qp} {
		require.NotNil(t, c.ReadinessProbe, c.Name)
		assert.Equal(t, queueproxy.HealthPath, c.ReadinessProbe.HTTPGet.Path, c.Name)
		assert.Equal(t, kubernetes.QueueServingPort, c.ReadinessProbe.HTTPGet.Port.IntValue(), c.Name)
		assert.Equal(t, int32(2), c.ReadinessProbe.PeriodSeconds, c.Name)
	}
	for _, c := range []corev1.Container{user, qp} {
		seen := map[string]bool{}
		for _, e := range c.Env {
			assert.False(t, seen[e.Name], "%s: env %s set twice", c.Name, e.Name)
			seen[e.Name] = true
		}
	}
	assert.Contains(t, qp.Env, corev1.EnvVar{Name: "USER_PORT", Value: "8081"})
	assert.Contains(t, qp.Env, corev1.EnvVar{Name: "USER_PROTOCOL", Value: "http1"})
	assert.Contains(t, qp.Env, corev1.EnvVar{Name: "PROBE_PATH", Value: "/healthz"})
	assert.Contains(t, qp.Env, corev1.EnvVar{Name: "REVISION_TIMEOUT_SECONDS", Value: "60"})

	// A different spec under the same name, a port of the sidecar, no image.
	other := newRevision(t, "tmpl", revision.Spec{Image: appImage, Port: 8082})
	assert.ErrorIs(t, b.Deploy(ctx, other), backend.ErrInvalidArgument)
	assert.ErrorIs(t, b.Deploy(ctx, newRevision(t, "port", revision.Spec{Image: appImage, Port: kubernetes.QueueServingPort})), backend.ErrInvalidArgument)
	assert.ErrorIs(t, b.Deploy(ctx, newRevision(t, "noimage", revision.Spec{Command: []string{"/bin/true"}})), backend.ErrInvalidArgument)
}

// TestScaleDownYoungestFirst checks the documented victim order: among
// ready pods, the youngest (by creation second) goes first.
func TestScaleDownYoungestFirst(t *testing.T) {
	b, rev, cur := up(t, "victim")
	ctx := t.Context()
	old := serving(cur())[0]
	time.Sleep(1100 * time.Millisecond) // creation timestamps have 1 s resolution: the next pod must be a second younger
	require.NoError(t, b.Scale(ctx, rev.Name(), 2))
	require.Eventually(t, func() bool { return len(serving(cur())) == 2 }, waitFor, 20*time.Millisecond)
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	require.Eventually(t, func() bool {
		s := cur()
		return len(s) == 1 && s[0].ID == old.ID && s[0].Serving()
	}, waitFor, 20*time.Millisecond, "the older instance %s must survive", old.ID)
}

// TestCrashLoopStatus checks that a crashed app is a new instance once
// restarted and that Status shows the restart and the exit.
func TestCrashLoopStatus(t *testing.T) {
	b, rev, cur := up(t, "crash")
	ctx := t.Context()
	first := serving(cur())[0]

	resp, err := http.Get("http://" + first.Address + backendtest.PathCrash)
	if err == nil {
		resp.Body.Close()
	}
	require.Eventually(t, func() bool {
		st, err := b.Status(ctx, rev.Name())
		return err == nil && len(st.Instances) == 1 && st.Instances[0].Restarts == 1 && st.Instances[0].LastExit != nil
	}, waitFor, 20*time.Millisecond)
	st, err := b.Status(ctx, rev.Name())
	require.NoError(t, err)
	assert.Equal(t, 1, st.Desired)
	assert.Equal(t, testapp.ExitCrashOnRequest, st.Instances[0].LastExit.Code)
	require.Eventually(t, func() bool {
		s := serving(cur())
		return len(s) == 1 && s[0].ID != first.ID
	}, waitFor, 20*time.Millisecond, "the restarted app must be a new, ready instance")

	_, err = b.Status(ctx, "nope-00001")
	assert.ErrorIs(t, err, backend.ErrNotDeployed)
	require.NoError(t, b.Remove(ctx, rev.Name()))
	require.Eventually(t, func() bool {
		_, err := b.Status(context.Background(), rev.Name())
		return err != nil
	}, waitFor, 20*time.Millisecond)
}

// TestKubeconfigOptions: a kubeconfig path works, its context's
// namespace (none: "default") is the default, and bad options name the
// field.
func TestKubeconfigOptions(t *testing.T) {
	c := lab.Cluster(t)
	b, err := kubernetes.New(kubernetes.Options{Kubeconfig: c.Kubeconfig, QueueProxyImage: queueImage, QPS: 5, Burst: 5, FieldManager: "test"})
	require.NoError(t, err)
	defer b.Close()
	assert.Equal(t, "default", b.Namespace())
	_, err = b.Watch(t.Context(), "absent-00001")
	assert.ErrorIs(t, err, backend.ErrNotDeployed)
	assert.ErrorIs(t, b.Scale(t.Context(), "absent-00001", 1), backend.ErrNotDeployed)
	assert.ErrorIs(t, b.Remove(t.Context(), "absent-00001"), backend.ErrNotDeployed)

	for _, o := range []kubernetes.Options{
		{QPS: -1}, {Burst: -1}, {QuietPeriod: -time.Second}, {QuietPeriod: 2 * time.Hour}, {DrainTimeout: -1},
	} {
		o.Config, o.QueueProxyImage = c.Config, queueImage
		_, err := kubernetes.New(o)
		assert.ErrorContains(t, err, "Options.", "%+v", o)
	}
	_, err = kubernetes.New(kubernetes.Options{Kubeconfig: t.TempDir() + "/missing", QueueProxyImage: queueImage})
	assert.ErrorContains(t, err, "client configuration")
}

// TestStatusMessage: a pod whose image the node cannot pull shows in
// Status as the revision's message.
func TestStatusMessage(t *testing.T) {
	b := newBackend(t, kubernetes.Options{})
	ctx := t.Context()
	rev := newRevision(t, "pull", revision.Spec{Image: "zeroscale.test/missing:1"})
	require.NoError(t, b.Deploy(ctx, rev))
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := b.Status(ctx, rev.Name())
		require.NoError(c, err)
		assert.Contains(c, st.Message, "ErrImagePull")
		require.Len(c, st.Instances, 1)
		assert.Equal(c, backend.InstanceStarting, st.Instances[0].State)
	}, waitFor, 20*time.Millisecond)
}

// TestEarlyReadiness: with kubelet probing only every minute (its first
// probe comes before the app listens), the instance is Ready through the
// backend's own probe while the pod is still not Ready.
func TestEarlyReadiness(t *testing.T) {
	b := newBackend(t, kubernetes.Options{})
	ctx := t.Context()
	rev := newRevision(t, "early", revision.Spec{Image: appImage, Readiness: revision.Probe{Period: time.Minute}})
	require.NoError(t, b.Deploy(ctx, rev))
	ch, err := b.Watch(ctx, rev.Name())
	require.NoError(t, err)
	cur := latest(t, ch)
	require.NoError(t, b.Scale(ctx, rev.Name(), 1))
	require.Eventually(t, func() bool { return len(serving(cur())) == 1 }, waitFor, 20*time.Millisecond)
	pods, err := lab.Cluster(t).Client.CoreV1().Pods(b.Namespace()).List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1)
	for _, c := range pods.Items[0].Status.Conditions {
		if c.Type == corev1.PodReady {
			assert.Equal(t, corev1.ConditionFalse, c.Status, "kubelet's verdict is a minute away")
		}
	}
	st, err := b.Status(ctx, rev.Name())
	require.NoError(t, err)
	require.Len(t, st.Instances, 1)
	assert.Equal(t, backend.InstanceRunning, st.Instances[0].State, "Status agrees with Watch")
	inst := serving(cur())[0]
	assert.False(t, inst.Listening.IsZero(), "Listening is when the early probe passed")
	assert.False(t, inst.Listening.Before(inst.Started.Truncate(time.Second)))
	resp, err := http.Get("http://" + inst.Address + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// TestReservedDeploymentTemplate: Deploy creates the reserved
// Deployment at replicas 0, selected by LabelKind, with the reserved
// profile as the app's resources.
func TestReservedDeploymentTemplate(t *testing.T) {
	b := newBackend(t, kubernetes.Options{})
	spec := revision.Spec{Image: appImage, Resources: revision.Resources{CPULimitMillis: 1000, MemoryLimitBytes: 256 << 20}}
	spec.Scaling.IdleMode = revision.IdleModeReserve
	spec.Scaling.ReservedCPUMillis = new(int64(100))
	spec.Scaling.ReservedMemoryBytes = new(int64(32 << 20))
	rev := newRevision(t, "rtmpl", spec)
	ctx := t.Context()
	require.NoError(t, b.Deploy(ctx, rev))
	require.NoError(t, b.Deploy(ctx, rev), "Deploy of the same revision again")
	c := lab.Cluster(t)
	d, err := c.Client.AppsV1().Deployments(b.Namespace()).Get(ctx, rev.Name()+kubernetes.ReservedSuffix, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(0), *d.Spec.Replicas)
	assert.Equal(t, "reserved", d.Spec.Selector.MatchLabels[kubernetes.LabelKind])
	assert.Equal(t, rev.Name(), d.Spec.Template.Labels[kubernetes.LabelRevision])
	assert.Equal(t, "reserved", d.Spec.Template.Labels[kubernetes.LabelKind])
	user := d.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "100m", user.Resources.Requests.Cpu().String())
	assert.Equal(t, "100m", user.Resources.Limits.Cpu().String())
	assert.Equal(t, "32Mi", user.Resources.Limits.Memory().String())
	std, err := c.Client.AppsV1().Deployments(b.Namespace()).Get(ctx, rev.Name(), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "1", std.Spec.Template.Spec.Containers[0].Resources.Limits.Cpu().String(), "the standard one keeps the spec's")
	assert.Empty(t, std.Spec.Template.Labels[kubernetes.LabelKind])

	require.NoError(t, b.Remove(ctx, rev.Name()))
	require.Eventually(t, func() bool {
		_, err := c.Client.AppsV1().Deployments(b.Namespace()).Get(ctx, rev.Name()+kubernetes.ReservedSuffix, metav1.GetOptions{})
		return err != nil
	}, waitFor, 50*time.Millisecond, "Remove deletes the reserved Deployment too")
}
