package main

import (
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/zeroscale/zeroscale/knative"
	"github.com/zeroscale/zeroscale/revision"
)

// editFlags are kn's flags that edit a Service's template
// (ConfigurationEditFlags).
type editFlags struct {
	image, cmd, port, revisionName string
	args, env, annotations         []string
	requests, limits               []string
	scaleMin, scaleMax, scaleInit  int
	scaleTarget                    float64
	concurrencyLimit, timeout      int
}

func (f *editFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.image, "image", "", "image to run (a container on the local Docker Engine)")
	fl.StringVar(&f.cmd, "cmd", "", "command to run: the image's entrypoint, or without --image a local executable")
	fl.StringArrayVar(&f.args, "arg", nil, "argument of the command; repeat for several (replaces all)")
	fl.StringVarP(&f.port, "port", "p", "", "the port the app listens on, passed as $PORT: [name:]port, name h2c or http1")
	fl.StringArrayVarP(&f.env, "env", "e", nil, "environment variable KEY=VALUE; KEY- removes it; repeat for several")
	fl.StringArrayVarP(&f.annotations, "annotation", "a", nil, "annotation KEY=VALUE of the service and its revisions (autoscaling.knative.dev/* of the revisions only); KEY- removes it")
	fl.StringSliceVar(&f.requests, "request", nil, "resource requests, e.g. cpu=500m,memory=256Mi")
	fl.StringSliceVar(&f.limits, "limit", nil, "resource limits, e.g. cpu=1,memory=512Mi")
	fl.IntVar(&f.scaleMin, "scale-min", 0, "minimum number of instances (autoscaling.knative.dev/min-scale)")
	fl.IntVar(&f.scaleMax, "scale-max", 0, "maximum number of instances, 0 = unlimited (autoscaling.knative.dev/max-scale)")
	fl.IntVar(&f.scaleInit, "scale-init", 0, "instances a new revision starts with (autoscaling.knative.dev/initial-scale)")
	fl.Float64Var(&f.scaleTarget, "scale-target", 0, "concurrent requests per instance the autoscaler aims at (autoscaling.knative.dev/target)")
	fl.IntVar(&f.concurrencyLimit, "concurrency-limit", 0, "hard limit of concurrent requests per instance, 0 = none (containerConcurrency)")
	fl.IntVar(&f.timeout, "timeout", 0, "request timeout in seconds (timeoutSeconds, default 300, at most 600)")
	fl.StringVar(&f.revisionName, "revision-name", "", "name of the new revision, starting with '<service>-' (default: numbered)")
}

// anyChanged reports whether a template flag was given.
func (f *editFlags) anyChanged(cmd *cobra.Command) bool {
	for _, name := range []string{"image", "cmd", "arg", "port", "env", "annotation", "request", "limit", "scale-min", "scale-max",
		"scale-init", "scale-target", "concurrency-limit", "timeout", "revision-name"} {
		if cmd.Flags().Changed(name) {
			return true
		}
	}
	return false
}

// apply edits svc's template as the flags say.
func (f *editFlags) apply(cmd *cobra.Command, svc *knative.Service) error {
	changed := cmd.Flags().Changed
	tmpl := &svc.Spec.Template
	if len(tmpl.Spec.Containers) == 0 {
		tmpl.Spec.Containers = []corev1.Container{{}}
	}
	c := &tmpl.Spec.Containers[0]
	if changed("image") {
		c.Image = f.image
	}
	if changed("cmd") {
		c.Command = []string{f.cmd}
	}
	if changed("arg") {
		c.Args = f.args
	}
	if changed("port") {
		name, num, ok := strings.Cut(f.port, ":")
		if !ok {
			name, num = "", f.port
		}
		n, err := strconv.ParseInt(num, 10, 32)
		if err != nil {
			return usagef("--port %q: want [name:]port, e.g. 8080 or h2c:8080", f.port)
		}
		c.Ports = []corev1.ContainerPort{{Name: name, ContainerPort: int32(n)}}
	}
	if changed("env") {
		env, err := editPairs(envMap(c.Env), envOrder(c.Env), f.env, "--env")
		if err != nil {
			return err
		}
		c.Env = nil
		for _, kv := range env {
			c.Env = append(c.Env, corev1.EnvVar{Name: kv[0], Value: kv[1]})
		}
	}
	if changed("annotation") {
		// As kn: on the service and its revisions, except autoscaling
		// ones, which Knative accepts on the revision template only.
		var service []string
		for _, a := range f.annotations {
			if !strings.HasPrefix(a, revision.AnnotationPrefix) {
				service = append(service, a)
			}
		}
		for _, e := range []struct {
			m     *map[string]string
			edits []string
		}{{&svc.Annotations, service}, {&tmpl.Annotations, f.annotations}} {
			pairs, err := editPairs(*e.m, sortedKeys(*e.m), e.edits, "--annotation")
			if err != nil {
				return err
			}
			*e.m = pairMap(pairs)
		}
	}
	setAnnotation := func(flag, key, value string) {
		if changed(flag) {
			if tmpl.Annotations == nil {
				tmpl.Annotations = map[string]string{}
			}
			tmpl.Annotations[key] = value
		}
	}
	setAnnotation("scale-min", revision.MinScaleAnnotation, strconv.Itoa(f.scaleMin))
	setAnnotation("scale-max", revision.MaxScaleAnnotation, strconv.Itoa(f.scaleMax))
	setAnnotation("scale-init", revision.InitialScaleAnnotation, strconv.Itoa(f.scaleInit))
	setAnnotation("scale-target", revision.TargetAnnotation, strconv.FormatFloat(f.scaleTarget, 'g', -1, 64))
	for _, r := range []struct {
		flag string
		list []string
		dst  *corev1.ResourceList
	}{{"request", f.requests, &c.Resources.Requests}, {"limit", f.limits, &c.Resources.Limits}} {
		if !changed(r.flag) {
			continue
		}
		for _, kv := range r.list {
			k, v, ok := strings.Cut(kv, "=")
			q, err := resource.ParseQuantity(v)
			if !ok || err != nil || (k != "cpu" && k != "memory") {
				return usagef("--%s %q: want cpu=QUANTITY or memory=QUANTITY, e.g. cpu=500m,memory=256Mi", r.flag, kv)
			}
			if *r.dst == nil {
				*r.dst = corev1.ResourceList{}
			}
			(*r.dst)[corev1.ResourceName(k)] = q
		}
	}
	if changed("concurrency-limit") {
		tmpl.Spec.ContainerConcurrency = new(int64(f.concurrencyLimit))
	}
	if changed("timeout") {
		tmpl.Spec.TimeoutSeconds = new(int64(f.timeout))
	}
	if changed("revision-name") {
		tmpl.Name = f.revisionName
	}
	return nil
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := make(map[string]string, len(env))
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func envOrder(env []corev1.EnvVar) []string {
	var names []string
	for _, e := range env {
		names = append(names, e.Name)
	}
	return names
}

func sortedKeys(m map[string]string) []string { return slices.Sorted(maps.Keys(m)) }

func pairMap(pairs [][2]string) map[string]string {
	if len(pairs) == 0 {
		return nil
	}
	m := make(map[string]string, len(pairs))
	for _, kv := range pairs {
		m[kv[0]] = kv[1]
	}
	return m
}

// editPairs applies KEY=VALUE (set) and KEY- (remove) edits to m,
// keeping the order of order and appending new keys in the order given.
func editPairs(m map[string]string, order, edits []string, flag string) ([][2]string, error) {
	m = maps.Clone(m)
	if m == nil {
		m = map[string]string{}
	}
	for _, e := range edits {
		if k, ok := strings.CutSuffix(e, "-"); ok && !strings.Contains(e, "=") {
			delete(m, k)
			continue
		}
		k, v, ok := strings.Cut(e, "=")
		if !ok || k == "" {
			return nil, usagef("%s %q: want KEY=VALUE, or KEY- to remove KEY", flag, e)
		}
		if _, known := m[k]; !known {
			order = append(order, k)
		}
		m[k] = v
	}
	var out [][2]string
	seen := map[string]bool{}
	for _, k := range order {
		if v, ok := m[k]; ok && !seen[k] {
			out = append(out, [2]string{k, v})
			seen[k] = true
		}
	}
	return out, nil
}

// trafficFlags are kn's --traffic, --tag and --untag.
type trafficFlags struct {
	traffic, tags, untags []string
}

func (f *trafficFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringSliceVar(&f.traffic, "traffic", nil, "traffic split REF=PERCENT, REF a revision, a tag or @latest; the percents sum to 100")
	fl.StringSliceVar(&f.tags, "tag", nil, "tag REVISION=TAG (REVISION may be @latest): the revision is also served at TAG-<service>")
	fl.StringSliceVar(&f.untags, "untag", nil, "remove the tag TAG")
}

func (f *trafficFlags) changed(cmd *cobra.Command) bool {
	fl := cmd.Flags()
	return fl.Changed("traffic") || fl.Changed("tag") || fl.Changed("untag")
}

const latestRef = "@latest"

// apply computes the new spec.traffic from the current one, as kn's
// traffic.Compute does: untag, tag, then (with --traffic) set every
// percent, dropping untagged targets left at 0 %.
func (f *trafficFlags) apply(svc *knative.Service) error {
	targets := svc.Spec.Traffic
	if len(targets) == 0 {
		targets = []knative.TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}}
	}
	isLatest := func(t knative.TrafficTarget) bool { return t.LatestRevision != nil && *t.LatestRevision }
	for _, tag := range f.untags {
		found := false
		for i := range targets {
			if targets[i].Tag == tag {
				targets[i].Tag, found = "", true
			}
		}
		if !found {
			return usagef("--untag %q: no traffic target has that tag", tag)
		}
	}
	for _, kv := range f.tags {
		ref, tag, ok := strings.Cut(kv, "=")
		if !ok || ref == "" || tag == "" {
			return usagef("--tag %q: want REVISION=TAG or @latest=TAG", kv)
		}
		i := slices.IndexFunc(targets, func(t knative.TrafficTarget) bool {
			return t.Tag == "" && ((ref == latestRef && isLatest(t)) || (ref != latestRef && t.RevisionName == ref))
		})
		if i < 0 {
			t := knative.TrafficTarget{Tag: tag, Percent: new(int64(0))}
			if ref == latestRef {
				t.LatestRevision = new(true)
			} else {
				t.RevisionName, t.LatestRevision = ref, new(false)
			}
			targets = append(targets, t)
			continue
		}
		targets[i].Tag = tag
	}
	if len(f.traffic) > 0 {
		for i := range targets {
			targets[i].Percent = new(int64(0))
		}
		sum := 0
		for _, kv := range f.traffic {
			ref, pct, ok := strings.Cut(kv, "=")
			p, err := strconv.Atoi(strings.TrimSuffix(pct, "%"))
			if !ok || ref == "" || err != nil || p < 0 || p > 100 {
				return usagef("--traffic %q: want REF=PERCENT, REF a revision, a tag or @latest, PERCENT in [0, 100]", kv)
			}
			sum += p
			i := slices.IndexFunc(targets, func(t knative.TrafficTarget) bool { return t.Tag != "" && t.Tag == ref })
			if i < 0 {
				i = slices.IndexFunc(targets, func(t knative.TrafficTarget) bool {
					return t.Tag == "" && ((ref == latestRef && isLatest(t)) || (ref != latestRef && t.RevisionName == ref))
				})
			}
			if i < 0 {
				t := knative.TrafficTarget{}
				if ref == latestRef {
					t.LatestRevision = new(true)
				} else {
					t.RevisionName, t.LatestRevision = ref, new(false)
				}
				targets = append(targets, t)
				i = len(targets) - 1
			}
			targets[i].Percent = new(int64(p))
		}
		if sum != 100 {
			return usagef("--traffic %s: the percents sum to %d, want 100", strings.Join(f.traffic, ","), sum)
		}
	}
	targets = slices.DeleteFunc(targets, func(t knative.TrafficTarget) bool {
		return t.Tag == "" && (t.Percent == nil || *t.Percent == 0)
	})
	svc.Spec.Traffic = targets
	return nil
}
