package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/internal/otelenv"
	"github.com/zeroscale/zeroscale/knative"
)

// serveFlags configure 'zeroscale serve'.
type serveFlags struct {
	files          []string
	addr           string
	adminAddr      string
	domain         string
	allowZeroInit  bool
	watchInterval  time.Duration
	shutdownTimout time.Duration
	verbose        bool
	dockerIdentity string
}

func newServeCommand(g *globals) *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [-f FILE_OR_DIR]...",
		Short: "Serve Knative Services on this machine, scaled to zero when idle",
		Long: `serve runs the Services of the given manifests (files, or directories of
*.yaml, *.yml and *.json files) and serves them at
http://NAME.NAMESPACE.localhost:PORT (every name under localhost is this
machine), or at http://localhost:PORT/NAME/. It re-applies a file when it
changes, as kubectl apply would: a changed template makes a new revision,
which takes the traffic once it is ready. Removing a Service from a file
does not delete it (use 'zeroscale service delete').

The admin API (what the other commands talk to) listens on --admin-addr,
loopback only unless --token (or ZEROSCALE_TOKEN) sets a token.`,
		Example: `  zeroscale serve -f hello.yaml
  curl http://hello.default.localhost:8080`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(cmd.Context(), cmd.OutOrStdout(), cmd.ErrOrStderr(), g, f)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "filename", "f", nil, "a manifest file or a directory of them; repeat for several")
	fl.StringVar(&f.addr, "addr", zeroscale.DefaultAddr, "where services are served")
	fl.StringVar(&f.adminAddr, "admin-addr", zeroscale.DefaultAdminAddr, "where the admin API listens")
	fl.StringVar(&f.domain, "domain", zeroscale.LocalDomain, "the domain service hosts live under")
	fl.BoolVar(&f.allowZeroInit, "allow-zero-initial-scale", true, "let a revision start at zero (autoscaling.knative.dev/initial-scale: \"0\"; Knative's allow-zero-initial-scale)")
	fl.DurationVar(&f.watchInterval, "watch-interval", time.Second, "how often the manifests are checked for changes (0 = never)")
	fl.DurationVar(&f.shutdownTimout, "shutdown-timeout", 30*time.Second, "how long requests in flight may finish at exit")
	fl.BoolVarP(&f.verbose, "verbose", "v", false, "debug logs")
	fl.StringVar(&f.dockerIdentity, "docker-identity", "", "label of this server's containers; a stable one lets a restarted serve remove what a killed one left (default <hostname>-<pid>)")
	return cmd
}

func serve(ctx context.Context, stdout, stderr io.Writer, g *globals, f serveFlags) error {
	level := slog.LevelInfo
	if f.verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	files, err := expand(f.files)
	if err != nil {
		return err
	}
	cfg := autoscaler.DefaultConfig()
	cfg.AllowZeroInitialScale = f.allowZeroInit
	// Traces go to the OTLP collector the standard variables name
	// (OTEL_EXPORTER_OTLP_ENDPOINT, …); none when they are unset.
	tp, err := otelenv.TracerProvider(ctx, "zeroscale")
	if err != nil {
		return err
	}
	if tp != nil {
		defer func() { _ = tp.Shutdown(context.WithoutCancel(ctx)) }() // after the Server's: sends the last spans
	}
	srv, err := zeroscale.New(zeroscale.Options{
		TracerProvider:    tracerProvider(tp),
		NewProxiedBackend: engines(logger, f.dockerIdentity),
		Config:            cfg,
		Namespace:         g.namespace,
		Domain:            f.domain,
		AdminToken:        g.token,
		Logger:            logger,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen on --addr: %w", err)
	}
	adminLn, err := net.Listen("tcp", f.adminAddr)
	if err != nil {
		_ = ln.Close()
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("listen on --admin-addr: %w", err)
	}
	served := make(chan error, 2)
	go func() { served <- srv.Serve(ln) }()
	go func() { served <- srv.ServeAdmin(adminLn) }()
	stop := func() error {
		sctx, cancel := context.WithTimeout(context.Background(), f.shutdownTimout)
		defer cancel()
		return srv.Shutdown(sctx)
	}

	w := &watcher{srv: srv, out: stdout, log: logger, hashes: map[string][32]byte{}}
	if errs := w.applyChanged(ctx, files); len(errs) > 0 {
		_ = stop()
		return errors.Join(errs...)
	}
	fmt.Fprintf(stdout, "Serving namespace '%s' at http://%s, admin API at http://%s\n", g.namespace, ln.Addr(), adminLn.Addr())

	var tick <-chan time.Time
	if f.watchInterval > 0 && len(f.files) > 0 {
		t := time.NewTicker(f.watchInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			logger.Info("shutting down: requests in flight finish, instances stop")
			return stop()
		case err := <-served:
			if !errors.Is(err, http.ErrServerClosed) {
				_ = stop()
				return err
			}
		case <-tick:
			files, err := expand(f.files)
			if err != nil {
				logger.Error("manifests", "err", err)
				continue
			}
			for _, err := range w.applyChanged(ctx, files) {
				logger.Error("apply", "err", err)
				fmt.Fprintln(stderr, "Error:", err)
			}
		}
	}
}

// expand lists the manifest files of the given files and directories.
func expand(inputs []string) ([]string, error) {
	var out []string
	for _, in := range inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, err
		}
		if !st.IsDir() {
			out = append(out, in)
			continue
		}
		entries, err := os.ReadDir(in)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && slices.Contains([]string{".yaml", ".yml", ".json"}, ext) {
				out = append(out, filepath.Join(in, e.Name()))
			}
		}
	}
	return out, nil
}

// watcher re-applies a manifest file when its content changes.
type watcher struct {
	srv    *zeroscale.Server
	out    io.Writer
	log    *slog.Logger
	hashes map[string][32]byte
}

// applyChanged applies every file whose content changed since it was
// last applied, and returns what went wrong, one error per file.
func (w *watcher) applyChanged(ctx context.Context, files []string) []error {
	var errs []error
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		sum := sha256.Sum256(data)
		if old, ok := w.hashes[file]; ok && old == sum {
			continue
		}
		w.hashes[file] = sum // a broken file is reported once, until it changes again
		svcs, err := knative.Decode(bytes.NewReader(data))
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", file, err))
			continue
		}
		for _, s := range svcs {
			ks, err := w.srv.ApplyKnative(ctx, s)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: service %q: %w", file, s.Name, err))
				continue
			}
			fmt.Fprintf(w.out, "Service '%s' applied from %s to latest revision '%s' is available at URL:\n%s\n",
				ks.Name, file, ks.Status.LatestCreatedRevisionName, ks.Status.URL)
		}
	}
	return errs
}

// tracerProvider is tp as an Options.TracerProvider: nil (no tracing)
// when tp is, not a non-nil interface holding a nil pointer.
func tracerProvider(tp *sdktrace.TracerProvider) trace.TracerProvider {
	if tp == nil {
		return nil
	}
	return tp
}
