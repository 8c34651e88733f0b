package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Exit codes, documented in the root command's help so scripts can rely
// on them.
const (
	exitOK          = 0
	exitFailed      = 1 // the server refused (invalid, not found, conflict) or a revision failed
	exitUsage       = 2 // bad flags or arguments
	exitUnreachable = 3 // no server answers at the admin address
	exitTimeout     = 4 // --wait-timeout passed before the service was ready
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// usageError is a mistake in the command line.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error { return usageError{fmt.Errorf(format, args...)} }

// timeoutError means a wait ran out of time.
type timeoutError struct{ msg string }

func (e timeoutError) Error() string { return e.msg }

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	ran := false
	root := newRootCommand(&ran)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	cmd, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintln(stderr, "Error:", err)
	var ue usageError
	var te timeoutError
	var unreachable *unreachableError
	switch {
	case !ran || errors.As(err, &ue):
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", cmd.CommandPath())
		return exitUsage
	case errors.As(err, &unreachable):
		return exitUnreachable
	case errors.As(err, &te):
		return exitTimeout
	}
	return exitFailed
}

// group returns a command that only holds subcommands: an unknown one
// is a usage error (cobra would print the help and succeed).
func group(cmd *cobra.Command) *cobra.Command {
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usagef("unknown command %q for %q", args[0], cmd.CommandPath())
		}
		return cmd.Help()
	}
	return cmd
}

// globals are the flags every client command takes.
type globals struct {
	admin     string
	token     string
	namespace string
}

func (g *globals) client() *client { return newClient(g.admin, g.token, g.namespace) }

func newRootCommand(ran *bool) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "zeroscale",
		Short: "Run Knative Services locally, scaled to zero when idle",
		Long: `zeroscale runs Knative Services (serving.knative.dev/v1 manifests) on this
machine, without a cluster: 'zeroscale serve -f service.yaml' serves them,
scaled to zero when idle and woken by the first request, and the service,
revision and route commands manage them as kn does.

A container with an image runs on the local Docker Engine; one with only a
command (a local executable) runs as a process.

Exit codes: 0 success; 1 the server refused the request (invalid, not found,
conflict) or a revision failed; 2 bad flags or arguments; 3 no server answers
at the admin address; 4 timed out waiting for the service to be ready.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			*ran = true
			return nil
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	pf := root.PersistentFlags()
	pf.StringVar(&g.admin, "admin", envOr("ZEROSCALE_ADMIN", "http://127.0.0.1:8081"), "URL of the server's admin API (env ZEROSCALE_ADMIN)")
	pf.StringVar(&g.token, "token", os.Getenv("ZEROSCALE_TOKEN"), "bearer token of the admin API (env ZEROSCALE_TOKEN)")
	pf.StringVarP(&g.namespace, "namespace", "n", "default", "namespace of the services")
	root.AddCommand(newServeCommand(g), newServiceCommand(g), newRevisionCommand(g), newRouteCommand(g))
	return root
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
