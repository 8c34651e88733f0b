package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/yaml"

	"github.com/zeroscale/zeroscale/knative"
	"github.com/zeroscale/zeroscale/revision"
)

// outputFlag is -o: "" (a table or description), yaml, json, and for
// describe also url.
type outputFlag struct {
	format string
	url    bool // whether -o url is allowed
}

func (o *outputFlag) add(cmd *cobra.Command, url bool) {
	o.url = url
	formats := "yaml|json"
	if url {
		formats += "|url"
	}
	cmd.Flags().StringVarP(&o.format, "output", "o", "", "output format: "+formats)
}

func (o *outputFlag) check() error {
	switch o.format {
	case "", "yaml", "json":
		return nil
	case "url":
		if o.url {
			return nil
		}
	}
	allowed := "yaml, json"
	if o.url {
		allowed += ", url"
	}
	return usagef("--output %q: want one of %s", o.format, allowed)
}

// print writes v as YAML or JSON; false when the format is a human one.
func (o *outputFlag) print(out io.Writer, v any) (bool, error) {
	switch o.format {
	case "yaml":
		b, err := yaml.Marshal(v)
		if err != nil {
			return true, err
		}
		_, err = out.Write(b)
		return true, err
	case "json":
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return true, err
		}
		_, err = fmt.Fprintf(out, "%s\n", b)
		return true, err
	}
	return false, nil
}

// table writes aligned columns as kn does (three spaces apart).
func table(out io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

func age(t metav1.Time) string {
	if t.IsZero() {
		return ""
	}
	return duration.HumanDuration(time.Since(t.Time))
}

// conditionsValue is kn's "3 OK / 3".
func conditionsValue(cs []knative.Condition) string {
	ok := 0
	for _, c := range cs {
		if c.Status == knative.StatusTrue {
			ok++
		}
	}
	return fmt.Sprintf("%d OK / %d", ok, len(cs))
}

func readyValue(cs []knative.Condition) string {
	for _, c := range cs {
		if c.Type == knative.ConditionReady {
			return string(c.Status)
		}
	}
	return "<unknown>"
}

func nonReadyReason(cs []knative.Condition) string {
	for _, c := range cs {
		if c.Type == knative.ConditionReady && c.Status != knative.StatusTrue {
			return c.Reason
		}
	}
	return ""
}

func printServices(out io.Writer, svcs []knative.Service) error {
	if len(svcs) == 0 {
		_, err := fmt.Fprintln(out, "No services found.")
		return err
	}
	var rows [][]string
	for _, s := range svcs {
		rows = append(rows, []string{s.Name, s.Status.URL, s.Status.LatestReadyRevisionName, age(s.CreationTimestamp),
			conditionsValue(s.Status.Conditions), readyValue(s.Status.Conditions), nonReadyReason(s.Status.Conditions)})
	}
	return table(out, []string{"NAME", "URL", "LATEST", "AGE", "CONDITIONS", "READY", "REASON"}, rows)
}

// trafficOf returns a revision's share of svc's traffic and its tags.
func trafficOf(svcs map[string]*knative.Service, r knative.Revision) (string, string) {
	svc := svcs[r.Labels[knative.ServiceLabel]]
	if svc == nil {
		return "", ""
	}
	pct := int64(0)
	var tags []string
	for _, t := range svc.Status.Traffic {
		if t.RevisionName != r.Name {
			continue
		}
		if t.Percent != nil {
			pct += *t.Percent
		}
		if t.Tag != "" {
			tags = append(tags, t.Tag)
		}
	}
	traffic := ""
	if pct > 0 {
		traffic = fmt.Sprintf("%d%%", pct)
	}
	return traffic, strings.Join(tags, ",")
}

func printRevisions(out io.Writer, revs []knative.Revision, svcs map[string]*knative.Service) error {
	if len(revs) == 0 {
		_, err := fmt.Fprintln(out, "No revisions found.")
		return err
	}
	var rows [][]string
	for _, r := range revs {
		traffic, tags := trafficOf(svcs, r)
		rows = append(rows, []string{r.Name, r.Labels[knative.ServiceLabel], traffic, tags, r.Labels[knative.ConfigurationGenerationLabel],
			age(r.CreationTimestamp), conditionsValue(r.Status.Conditions), readyValue(r.Status.Conditions), nonReadyReason(r.Status.Conditions)})
	}
	return table(out, []string{"NAME", "SERVICE", "TRAFFIC", "TAGS", "GENERATION", "AGE", "CONDITIONS", "READY", "REASON"}, rows)
}

func printRoutes(out io.Writer, routes []knative.Route) error {
	if len(routes) == 0 {
		_, err := fmt.Fprintln(out, "No routes found.")
		return err
	}
	var rows [][]string
	for _, r := range routes {
		rows = append(rows, []string{r.Name, r.Status.URL, readyValue(r.Status.Conditions)})
	}
	return table(out, []string{"NAME", "URL", "READY"}, rows)
}

// describeService is kn's human description: metadata, the revisions
// with their traffic, the conditions.
func describeService(out io.Writer, ks *knative.Service, revs []knative.Revision) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", ks.Name)
	fmt.Fprintf(tw, "Namespace:\t%s\n", ks.Namespace)
	writeMap(tw, "Labels", ks.Labels)
	writeMap(tw, "Annotations", ks.Annotations)
	fmt.Fprintf(tw, "Age:\t%s\n", age(ks.CreationTimestamp))
	fmt.Fprintf(tw, "URL:\t%s\n", ks.Status.URL)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nRevisions:")
	byName := map[string]knative.Revision{}
	for _, r := range revs {
		byName[r.Name] = r
	}
	shown := map[string]bool{}
	show := func(name string, pct int64, latest bool, tag string) {
		r, ok := byName[name]
		if !ok {
			return
		}
		shown[name] = true
		ready, _ := r.Status.Condition(knative.ConditionReady)
		header := name
		switch {
		case latest:
			header = fmt.Sprintf("@latest (%s)", name)
		case name == ks.Status.LatestReadyRevisionName:
			header = name + " (current @latest)"
		case name == ks.Status.LatestCreatedRevisionName:
			header = name + " (latest created)"
		}
		if tag != "" {
			header += " #" + tag
		}
		fmt.Fprintf(out, "  %s  %s [%s] (%s)\n", bullet(pct, ready.Status), header, r.Labels[knative.ConfigurationGenerationLabel], age(r.CreationTimestamp))
		if ready.Status == knative.StatusFalse {
			fmt.Fprintf(out, "        Error:     %s\n", ready.Reason)
		}
		writeRun(out, "        ", r)
	}
	for _, t := range ks.Status.Traffic {
		p := int64(0)
		if t.Percent != nil {
			p = *t.Percent
		}
		show(t.RevisionName, p, t.LatestRevision != nil && *t.LatestRevision, t.Tag)
	}
	for _, name := range []string{ks.Status.LatestCreatedRevisionName, ks.Status.LatestReadyRevisionName} {
		if name != "" && !shown[name] {
			show(name, 0, false, "")
		}
	}
	fmt.Fprintln(out)
	return writeConditions(out, ks.Status.Conditions)
}

// bullet is kn's traffic column of describe: "100%", "  50%", "   +".
func bullet(pct int64, status corev1.ConditionStatus) string {
	symbol := "?"
	switch status {
	case knative.StatusTrue:
		symbol = "+"
		if pct > 0 {
			symbol = "%"
		}
	case knative.StatusFalse:
		symbol = "!"
	}
	if pct == 0 {
		return "   " + symbol
	}
	return fmt.Sprintf("%3d%s", pct, symbol)
}

// writeRun prints what a revision runs: image or command, replicas.
func writeRun(out io.Writer, indent string, r knative.Revision) {
	if len(r.Spec.Containers) == 0 {
		return
	}
	c := r.Spec.Containers[0]
	if c.Image != "" {
		fmt.Fprintf(out, "%sImage:     %s\n", indent, c.Image)
	}
	if len(c.Command) > 0 {
		fmt.Fprintf(out, "%sCommand:   %s\n", indent, strings.Join(append(append([]string(nil), c.Command...), c.Args...), " "))
	}
	actual, desired := int32(0), "?"
	if r.Status.ActualReplicas != nil {
		actual = *r.Status.ActualReplicas
	}
	if r.Status.DesiredReplicas != nil {
		desired = fmt.Sprint(*r.Status.DesiredReplicas)
	}
	fmt.Fprintf(out, "%sReplicas:  %d/%s\n", indent, actual, desired)
}

func describeRevision(out io.Writer, r *knative.Revision) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "Namespace:\t%s\n", r.Namespace)
	writeMap(tw, "Annotations", r.Annotations)
	fmt.Fprintf(tw, "Age:\t%s\n", age(r.CreationTimestamp))
	if len(r.Spec.Containers) > 0 {
		c := r.Spec.Containers[0]
		if c.Image != "" {
			fmt.Fprintf(tw, "Image:\t%s\n", c.Image)
		}
		if len(c.Command) > 0 {
			fmt.Fprintf(tw, "Command:\t%s\n", strings.Join(append(append([]string(nil), c.Command...), c.Args...), " "))
		}
		if len(c.Ports) > 0 {
			fmt.Fprintf(tw, "Port:\t%d\n", c.Ports[0].ContainerPort)
		}
		var env []string
		for _, e := range c.Env {
			env = append(env, e.Name+"="+e.Value)
		}
		if len(env) > 0 {
			fmt.Fprintf(tw, "Env:\t%s\n", strings.Join(env, ", "))
		}
	}
	actual, desired := int32(0), "?"
	if r.Status.ActualReplicas != nil {
		actual = *r.Status.ActualReplicas
	}
	if r.Status.DesiredReplicas != nil {
		desired = fmt.Sprint(*r.Status.DesiredReplicas)
	}
	fmt.Fprintf(tw, "Replicas:\t%d/%s\n", actual, desired)
	min, max := r.Annotations[revision.MinScaleAnnotation], r.Annotations[revision.MaxScaleAnnotation]
	if min != "" || max != "" {
		if min == "" {
			min = "0"
		}
		if max == "" || max == "0" {
			max = "∞"
		}
		fmt.Fprintf(tw, "Scale:\t%s ... %s\n", min, max)
	}
	if cc := r.Spec.ContainerConcurrency; cc != nil && *cc > 0 {
		fmt.Fprintf(tw, "Concurrency:\n  Limit:\t%d\n", *cc)
	}
	fmt.Fprintf(tw, "Service:\t%s\n", r.Labels[knative.ServiceLabel])
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return writeConditions(out, r.Status.Conditions)
}

func writeMap(w io.Writer, title string, m map[string]string) {
	if len(m) == 0 {
		return
	}
	var kv []string
	for k, v := range m {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	fmt.Fprintf(w, "%s:\t%s\n", title, strings.Join(kv, ", "))
}

// writeConditions is kn's conditions table: "++" true, "!!" false, "??"
// unknown, " I" an informational condition that is false.
func writeConditions(out io.Writer, cs []knative.Condition) error {
	fmt.Fprintln(out, "Conditions:")
	tw := tabwriter.NewWriter(out, 0, 4, 1, ' ', 0)
	fmt.Fprintln(tw, "  OK\tTYPE\tAGE\tREASON")
	for _, c := range cs {
		ok := "??"
		switch c.Status {
		case knative.StatusTrue:
			ok = "++"
		case knative.StatusFalse:
			ok = "!!"
			if c.Severity == "Info" {
				ok = " I"
			}
		}
		age := ""
		if c.LastTransitionTime != nil {
			age = duration.HumanDuration(time.Since(c.LastTransitionTime.Time))
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", ok, c.Type, age, c.Reason)
	}
	return tw.Flush()
}

func listType(kind string) metav1.TypeMeta {
	return metav1.TypeMeta{APIVersion: knative.APIVersion, Kind: kind}
}

func printRouteDescription(out io.Writer, r *knative.Route) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "Namespace:\t%s\n", r.Namespace)
	fmt.Fprintf(tw, "Age:\t%s\n", age(r.CreationTimestamp))
	fmt.Fprintf(tw, "URL:\t%s\n", r.Status.URL)
	fmt.Fprintf(tw, "Service:\t%s\n", r.Labels[knative.ServiceLabel])
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nTraffic Targets:")
	tw = tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	for _, t := range r.Status.Traffic {
		p := int64(0)
		if t.Percent != nil {
			p = *t.Percent
		}
		name := t.RevisionName
		if t.LatestRevision != nil && *t.LatestRevision {
			name = fmt.Sprintf("@latest (%s)", t.RevisionName)
		}
		fmt.Fprintf(tw, "  %3d%%\t%s\n", p, name)
		if t.Tag != "" {
			fmt.Fprintf(tw, "  \ttag: %s\n", t.Tag)
			fmt.Fprintf(tw, "  \tURL: %s\n", t.URL)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	return writeConditions(out, r.Status.Conditions)
}
