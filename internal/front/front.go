// Package front serves an in-process per-instance proxy (normally a
// *queueproxy.Proxy) on its own loopback listener, the wiring the
// process and Docker backends share: HTTP/1.1 and h2c, bounded header
// and idle timeouts, the proxy's background Run, and its readiness
// verdict.
package front

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/zeroscale/zeroscale/queueproxy"
)

// Proxy is what a Front serves: a handler that can drain.
type Proxy interface {
	http.Handler
	// Drain makes the proxy refuse new work and returns once no request
	// is in flight, or when ctx is done.
	Drain(ctx context.Context) error
}

// Prober is a Proxy that decides readiness by a method; other proxies
// are asked queueproxy.HealthPath through ServeHTTP.
type Prober interface {
	Probe(ctx context.Context) error
}

// Runner is a Proxy with background work, run for the Front's life.
type Runner interface {
	Run(ctx context.Context) error
}

// Server-side bounds of a front's listener: slow or idle clients cannot
// hold its connections forever. Request deadlines are the proxy's job.
const (
	ReadHeaderTimeout = 30 * time.Second
	IdleTimeout       = 90 * time.Second
)

// Front is a Proxy served on a listener.
type Front struct {
	proxy  Proxy
	srv    *http.Server
	done   chan struct{} // closed once Serve returned
	stop   context.CancelFunc
	runEnd chan struct{} // closed once the proxy's Run returned
}

// Serve serves p on ln (HTTP/1.1 and h2c) and runs p's Run, if any,
// until Close. log receives the server's errors and Run's failure.
func Serve(p Proxy, ln net.Listener, log *slog.Logger) *Front {
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true)
	f := &Front{
		proxy: p,
		srv: &http.Server{
			Handler:           p,
			ReadHeaderTimeout: ReadHeaderTimeout,
			IdleTimeout:       IdleTimeout,
			Protocols:         &protocols,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		done:   make(chan struct{}),
		runEnd: make(chan struct{}),
	}
	ctx, stop := context.WithCancel(context.Background())
	f.stop = stop
	go func() {
		defer close(f.done)
		_ = f.srv.Serve(ln)
	}()
	go func() {
		defer close(f.runEnd)
		if r, ok := p.(Runner); ok {
			if err := r.Run(ctx); err != nil {
				log.Warn("proxy Run failed", "err", err)
			}
		}
	}()
	return f
}

// Proxy returns the served proxy.
func (f *Front) Proxy() Proxy { return f.proxy }

// Probe asks the proxy whether the instance is ready: its Probe method
// if it is a Prober, else a GET of queueproxy.HealthPath through
// ServeHTTP, in process, answered 200.
func (f *Front) Probe(ctx context.Context) error {
	if p, ok := f.proxy.(Prober); ok {
		return p.Probe(ctx)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://127.0.0.1"+queueproxy.HealthPath, nil)
	if err != nil {
		return err
	}
	req.RemoteAddr = "127.0.0.1:0"
	var w statusWriter
	f.proxy.ServeHTTP(&w, req)
	// A handler that writes nothing answered 200, as net/http does.
	if w.status != 0 && w.status != http.StatusOK {
		return fmt.Errorf("proxy health check: status %d", w.status)
	}
	return nil
}

// Close stops serving (closing the listener) and the proxy's Run, and
// waits for both; the proxy was drained before, so only idle
// connections are left to close.
func (f *Front) Close() {
	_ = f.srv.Close()
	f.stop()
	<-f.done
	<-f.runEnd
}

// statusWriter records a response's status and discards its body.
type statusWriter struct {
	header http.Header
	status int
}

func (w *statusWriter) Header() http.Header {
	if w.header == nil {
		w.header = make(http.Header)
	}
	return w.header
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(b), nil
}
