package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/zeroscale/zeroscale/knative"
)

// waitFlags are kn's --wait, --no-wait and --wait-timeout.
type waitFlags struct {
	noWait  bool
	timeout int
}

func (f *waitFlags) add(cmd *cobra.Command, what string) {
	cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "do not wait for the service to be "+what)
	cmd.Flags().IntVar(&f.timeout, "wait-timeout", 600, "seconds to wait for the service to be "+what)
}

func newServiceCommand(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "service",
		Aliases: []string{"ksvc", "services"},
		Short:   "Manage services",
	})
	cmd.AddCommand(newServiceCreate(g), newServiceUpdate(g), newServiceApply(g), newServiceDelete(g),
		newServiceList(g), newServiceDescribe(g), newServiceWait(g))
	return cmd
}

// newService is an empty Service named name.
func newService(name string) *knative.Service {
	return &knative.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: knative.APIVersion, Kind: knative.KindService},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       knative.ServiceSpec{Template: knative.RevisionTemplateSpec{Spec: knative.RevisionSpec{PodSpec: corev1.PodSpec{Containers: []corev1.Container{{}}}}}},
	}
}

// fromFile reads the one Service in file ("-" is stdin); name, when
// given, must match it.
func fromFile(file, name string) (*knative.Service, error) {
	var r io.Reader = os.Stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	svcs, err := knative.Decode(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if len(svcs) != 1 {
		return nil, fmt.Errorf("%s holds %d Services: give one per command (zeroscale serve -f takes many)", file, len(svcs))
	}
	svc := svcs[0]
	switch {
	case name != "" && svc.Name == "":
		svc.Name = name
	case name != "" && svc.Name != name:
		return nil, usagef("the service is called %q in %s, not %q", svc.Name, file, name)
	}
	return svc, nil
}

// clean drops what the server sets, so an edited Service can be sent
// back.
func clean(svc *knative.Service) {
	svc.Status = knative.ServiceStatus{}
	svc.CreationTimestamp, svc.Generation, svc.ResourceVersion, svc.UID, svc.ManagedFields = metav1.Time{}, 0, "", "", nil
}

func marshal(svc *knative.Service) ([]byte, error) { return yaml.Marshal(svc) }

func nameArg(args []string, verb string, fromFile bool) (string, error) {
	switch {
	case len(args) == 1:
		return args[0], nil
	case len(args) == 0 && fromFile:
		return "", nil
	}
	return "", usagef("'service %s' requires the service name given as single argument", verb)
}

// serviceArg is the Service a create or apply command starts from: the
// one in file when given (its name checked against the NAME argument),
// else an empty one named by the argument.
func serviceArg(args []string, verb, file string) (*knative.Service, error) {
	name, err := nameArg(args, verb, file != "")
	if err != nil {
		return nil, err
	}
	if file != "" {
		return fromFile(file, name)
	}
	return newService(name), nil
}

// existingService gets the Service called name; exists is false (and
// err nil) when there is none.
func (c *client) existingService(ctx context.Context, name string) (svc *knative.Service, exists bool, err error) {
	svc, err = c.getService(ctx, name)
	switch {
	case err == nil:
		return svc, true, nil
	case isReason(err, metav1.StatusReasonNotFound):
		return nil, false, nil
	}
	return nil, false, err
}

func newServiceCreate(g *globals) *cobra.Command {
	var ef editFlags
	var wf waitFlags
	var file string
	var force bool
	cmd := &cobra.Command{
		Use:   "create NAME --image IMAGE | --cmd COMMAND",
		Short: "Create a service",
		Example: `  # A local executable, at zero until the first request
  zeroscale service create hello --cmd ./hello --env TARGET=World --scale-init 0

  # An image on the local Docker Engine
  zeroscale service create hello --image hello:latest --port 8080

  # From a Knative manifest
  zeroscale service create -f service.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := serviceArg(args, "create", file)
			if err != nil {
				return err
			}
			if file == "" && !cmd.Flags().Changed("image") && !cmd.Flags().Changed("cmd") {
				return usagef("'service create' requires --image or --cmd (or -f FILE)")
			}
			if err := ef.apply(cmd, svc); err != nil {
				return err
			}
			c := g.client()
			ctx := cmd.Context()
			_, exists, err := c.existingService(ctx, svc.Name)
			if err != nil {
				return err
			}
			if exists && !force {
				return fmt.Errorf("cannot create service '%s' in namespace '%s' because the service already exists and no --force option was given", svc.Name, g.namespace)
			}
			data, err := marshal(svc)
			if err != nil {
				return err
			}
			doing, done := "Creating", "created"
			var ks *knative.Service
			if exists {
				doing, done = "Replacing", "replaced"
				ks, err = c.putService(ctx, svc.Name, data)
			} else {
				ks, err = c.createService(ctx, data)
			}
			if err != nil {
				return err
			}
			return finish(cmd, c, ks, wf, doing, done, "", g.namespace)
		},
	}
	ef.add(cmd)
	wf.add(cmd, "ready")
	cmd.Flags().StringVarP(&file, "filename", "f", "", "create from a Knative Service manifest (YAML or JSON; - for stdin)")
	cmd.Flags().BoolVar(&force, "force", false, "replace the service if it exists")
	return cmd
}

func newServiceUpdate(g *globals) *cobra.Command {
	var ef editFlags
	var tf trafficFlags
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "update NAME",
		Short: "Update a service: a changed template makes a new revision",
		Example: `  # New environment: a new revision, traffic moves to it once it is ready
  zeroscale service update hello --env TARGET=Knative

  # Split traffic 50/50 between the previous revision (tagged old) and the latest
  zeroscale service update hello --tag hello-00001=old --traffic old=50,@latest=50`,
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := nameArg(args, "update", false)
			if err != nil {
				return err
			}
			if !ef.anyChanged(cmd) && !tf.changed(cmd) {
				return usagef("flag(s) not set: give what to change, e.g. --env KEY=VALUE or --traffic @latest=100")
			}
			c := g.client()
			ctx := cmd.Context()
			svc, err := c.getService(ctx, name)
			if err != nil {
				return err
			}
			before := svc.Status.LatestReadyRevisionName
			clean(svc)
			orig := svc.DeepCopy()
			if err := ef.apply(cmd, svc); err != nil {
				return err
			}
			if !reflect.DeepEqual(orig.Spec.Template, svc.Spec.Template) && !cmd.Flags().Changed("revision-name") {
				svc.Spec.Template.Name = "" // a changed template needs a new name: let it be numbered
			}
			if err := tf.apply(svc); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if reflect.DeepEqual(orig.Spec, svc.Spec) {
				fmt.Fprintf(out, "Service '%s' updated in namespace '%s'.\nNo new revision has been created.\n", name, g.namespace)
				return nil
			}
			data, err := marshal(svc)
			if err != nil {
				return err
			}
			ks, err := c.putService(ctx, name, data)
			if err != nil {
				return err
			}
			return finish(cmd, c, ks, wf, "Updating Service", "updated", before, g.namespace)
		},
	}
	ef.add(cmd)
	tf.add(cmd)
	wf.add(cmd, "ready")
	return cmd
}

func newServiceApply(g *globals) *cobra.Command {
	var ef editFlags
	var wf waitFlags
	var file string
	cmd := &cobra.Command{
		Use:   "apply NAME | -f FILE",
		Short: "Create or update a service from flags or a manifest, as kubectl apply",
		RunE: func(cmd *cobra.Command, args []string) error {
			svc, err := serviceArg(args, "apply", file)
			if err != nil {
				return err
			}
			if err := ef.apply(cmd, svc); err != nil {
				return err
			}
			c := g.client()
			ctx := cmd.Context()
			old, exists, err := c.existingService(ctx, svc.Name)
			if err != nil {
				return err
			}
			doing, done := "Creating", "created"
			if exists {
				doing, done = "Applying", "applied"
			}
			data, err := marshal(svc)
			if err != nil {
				return err
			}
			ks, err := c.putService(ctx, svc.Name, data)
			if err != nil {
				return err
			}
			if exists && ks.Generation == old.Generation {
				fmt.Fprintf(cmd.OutOrStdout(), "No changes to apply to service '%s'.\n", svc.Name)
				return showURL(cmd.OutOrStdout(), ks, "", "unchanged")
			}
			return finish(cmd, c, ks, wf, doing, done, "", g.namespace)
		},
	}
	ef.add(cmd)
	wf.add(cmd, "ready")
	cmd.Flags().StringVarP(&file, "filename", "f", "", "a Knative Service manifest (YAML or JSON; - for stdin)")
	return cmd
}

// finish waits for ks to be ready (unless --no-wait) with kn's progress
// lines, then prints where it is served.
func finish(cmd *cobra.Command, c *client, ks *knative.Service, wf waitFlags, doing, done, before, namespace string) error {
	out := cmd.OutOrStdout()
	if wf.noWait {
		fmt.Fprintf(out, "Service '%s' %s in namespace '%s'.\n", ks.Name, done, namespace)
		return nil
	}
	if doing == "Updating Service" {
		fmt.Fprintf(out, "%s '%s' in namespace '%s':\n\n", doing, ks.Name, namespace)
	} else {
		fmt.Fprintf(out, "%s service '%s' in namespace '%s':\n\n", doing, ks.Name, namespace)
	}
	ready, err := waitReady(cmd.Context(), c, ks.Name, ks.Generation, out, time.Duration(wf.timeout)*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	return showURL(out, ready, done, before)
}

// waitReady polls the service until its Ready condition is True (or
// False: an error), printing kn's "%7.3fs <message>" line each time its
// status changes while it is not ready.
func waitReady(ctx context.Context, c *client, name string, generation int64, out io.Writer, timeout time.Duration) (*knative.Service, error) {
	const poll = 100 * time.Millisecond
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	lastKey, lastMsg := "", ""
	for {
		ks, err := c.getService(ctx, name)
		if errors.Is(err, context.DeadlineExceeded) {
			return nil, timeoutError{fmt.Sprintf("timeout: service '%s' not ready after %d seconds", name, int(timeout.Seconds()))}
		}
		if err != nil {
			return nil, err
		}
		elapsed := float64(time.Since(start).Round(time.Millisecond)) / float64(time.Second)
		ready, _ := ks.Status.Condition(knative.ConditionReady)
		if ks.Status.ObservedGeneration >= generation {
			switch ready.Status {
			case knative.StatusTrue:
				fmt.Fprintf(out, "%7.3fs Ready to serve.\n", elapsed)
				return ks, nil
			case knative.StatusFalse:
				return nil, fmt.Errorf("%s: %s", ready.Reason, ready.Message)
			}
		}
		if key := fmt.Sprint(ks.Status.Conditions, ks.Status.Traffic); key != lastKey && ready.Message != "" {
			msg := ready.Message
			if msg == lastMsg {
				msg = "..."
			}
			fmt.Fprintf(out, "%7.3fs %s\n", elapsed, msg)
			lastKey, lastMsg = key, ready.Message
		}
		select {
		case <-ctx.Done():
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return nil, timeoutError{fmt.Sprintf("timeout: service '%s' not ready after %d seconds", name, int(timeout.Seconds()))}
			}
			return nil, ctx.Err()
		case <-time.After(poll):
		}
	}
}

// showURL is kn's closing line.
func showURL(out io.Writer, ks *knative.Service, done, before string) error {
	rev := ks.Status.LatestReadyRevisionName
	if before == "unchanged" || (before != "" && before == rev) {
		fmt.Fprintf(out, "Service '%s' with latest revision '%s' (unchanged) is available at URL:\n%s\n", ks.Name, rev, ks.Status.URL)
		return nil
	}
	fmt.Fprintf(out, "Service '%s' %s to latest revision '%s' is available at URL:\n%s\n", ks.Name, done, rev, ks.Status.URL)
	return nil
}

func newServiceDelete(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "delete NAME [NAME ...]",
		Short: "Delete services (their revisions drain and stop)",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && !all {
				return usagef("'service delete' requires the service name(s)")
			}
			if len(args) > 0 && all {
				return usagef("'service delete' with --all flag requires no arguments")
			}
			c := g.client()
			ctx := cmd.Context()
			if all {
				svcs, err := c.listServices(ctx)
				if err != nil {
					return err
				}
				for _, s := range svcs {
					args = append(args, s.Name)
				}
				if len(args) == 0 {
					fmt.Fprintln(cmd.OutOrStdout(), "No services found.")
					return nil
				}
			}
			var errs []error
			for _, name := range args {
				if err := c.deleteService(ctx, name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Service '%s' successfully deleted in namespace '%s'.\n", name, g.namespace)
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "delete all services in the namespace")
	return cmd
}

func newServiceWait(g *globals) *cobra.Command {
	var wf waitFlags
	cmd := &cobra.Command{
		Use:   "wait NAME",
		Short: "Wait until a service is ready (exit 4 on --wait-timeout)",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := nameArg(args, "wait", false)
			if err != nil {
				return err
			}
			c := g.client()
			ks, err := c.getService(cmd.Context(), name)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if _, err := waitReady(cmd.Context(), c, name, ks.Generation, out, time.Duration(wf.timeout)*time.Second); err != nil {
				return err
			}
			fmt.Fprintf(out, "Service '%s' in namespace '%s' is ready.\n", name, g.namespace)
			return nil
		},
	}
	cmd.Flags().IntVar(&wf.timeout, "wait-timeout", 600, "seconds to wait for the service to be ready")
	return cmd
}
