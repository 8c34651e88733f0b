package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zeroscale/zeroscale/knative"
)

func newServiceList(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List services",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			svcs, err := g.client().listServices(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				svcs = filter(svcs, func(s knative.Service) bool { return s.Name == args[0] })
			}
			if done, err := o.print(cmd.OutOrStdout(), knative.ServiceList{TypeMeta: listType("ServiceList"), Items: svcs}); done {
				return err
			}
			return printServices(cmd.OutOrStdout(), svcs)
		},
	}
	o.add(cmd, false)
	return cmd
}

func newServiceDescribe(g *globals) *cobra.Command {
	var o outputFlag
	cmd := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a service: its URL, revisions with their traffic, conditions",
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := nameArg(args, "describe", false)
			if err != nil {
				return err
			}
			if err := o.check(); err != nil {
				return err
			}
			c := g.client()
			ks, err := c.getService(cmd.Context(), name)
			if err != nil {
				return err
			}
			if o.format == "url" {
				_, err := fmt.Fprintln(cmd.OutOrStdout(), ks.Status.URL)
				return err
			}
			if done, err := o.print(cmd.OutOrStdout(), ks); done {
				return err
			}
			revs, err := c.listRevisions(cmd.Context(), name)
			if err != nil {
				return err
			}
			return describeService(cmd.OutOrStdout(), ks, revs)
		},
	}
	o.add(cmd, true)
	return cmd
}

func filter[T any](items []T, keep func(T) bool) []T {
	var out []T
	for _, it := range items {
		if keep(it) {
			out = append(out, it)
		}
	}
	return out
}

func newRevisionCommand(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "revision",
		Aliases: []string{"revisions"},
		Short:   "Manage revisions",
	})
	var o outputFlag
	var service string
	list := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List revisions, with their traffic and tags",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			c := g.client()
			revs, err := c.listRevisions(cmd.Context(), service)
			if err != nil {
				return err
			}
			if len(args) == 1 {
				revs = filter(revs, func(r knative.Revision) bool { return r.Name == args[0] })
			}
			if done, err := o.print(cmd.OutOrStdout(), knative.RevisionList{TypeMeta: listType("RevisionList"), Items: revs}); done {
				return err
			}
			svcs, err := c.listServices(cmd.Context())
			if err != nil {
				return err
			}
			byName := map[string]*knative.Service{}
			for i := range svcs {
				byName[svcs[i].Name] = &svcs[i]
			}
			return printRevisions(cmd.OutOrStdout(), revs, byName)
		},
	}
	list.Flags().StringVarP(&service, "service", "s", "", "only the revisions of this service")
	o.add(list, false)

	var do outputFlag
	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a revision",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("'revision describe' requires the revision name given as single argument")
			}
			if err := do.check(); err != nil {
				return err
			}
			r, err := g.client().getRevision(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if done, err := do.print(cmd.OutOrStdout(), r); done {
				return err
			}
			return describeRevision(cmd.OutOrStdout(), r)
		},
	}
	do.add(describe, false)

	del := &cobra.Command{
		Use:   "delete NAME [NAME ...]",
		Short: "Delete revisions that no traffic reaches",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("'revision delete' requires the revision name(s)")
			}
			c := g.client()
			var errs []error
			for _, name := range args {
				if err := c.deleteRevision(cmd.Context(), name); err != nil {
					errs = append(errs, err)
					continue
				}
				fmt.Fprintf(cmd.OutOrStdout(), "Revision '%s' deleted in namespace '%s'.\n", name, g.namespace)
			}
			return errors.Join(errs...)
		},
	}
	cmd.AddCommand(list, describe, del)
	return cmd
}

func newRouteCommand(g *globals) *cobra.Command {
	cmd := group(&cobra.Command{
		Use:     "route",
		Aliases: []string{"routes"},
		Short:   "List routes (one per service: its URL and traffic)",
	})
	var o outputFlag
	list := &cobra.Command{
		Use:     "list [NAME]",
		Aliases: []string{"ls"},
		Short:   "List routes",
		Args:    cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := o.check(); err != nil {
				return err
			}
			routes, err := g.client().listRoutes(cmd.Context())
			if err != nil {
				return err
			}
			if len(args) == 1 {
				routes = filter(routes, func(r knative.Route) bool { return r.Name == args[0] })
			}
			if done, err := o.print(cmd.OutOrStdout(), knative.RouteList{TypeMeta: listType("RouteList"), Items: routes}); done {
				return err
			}
			return printRoutes(cmd.OutOrStdout(), routes)
		},
	}
	o.add(list, false)
	var do outputFlag
	describe := &cobra.Command{
		Use:   "describe NAME",
		Short: "Show a route",
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("'route describe' requires the route name given as single argument")
			}
			if err := do.check(); err != nil {
				return err
			}
			r, err := g.client().getRoute(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if done, err := do.print(cmd.OutOrStdout(), r); done {
				return err
			}
			return printRouteDescription(cmd.OutOrStdout(), r)
		},
	}
	do.add(describe, false)
	cmd.AddCommand(list, describe)
	return cmd
}
