package process

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/front"
	"github.com/zeroscale/zeroscale/internal/probe"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// instance is one supervised slot of a revision: a sequence of
// incarnations, each one exec of the app. Every incarnation is its own
// backend.Instance, with its own ID (the slot's name, then "-r1", "-r2"
// … after restarts), Started, and (with a proxy) its own fronting proxy
// and Address; between a crash and the restart the slot is in no
// snapshot. Its run goroutine owns the process; the fields below are
// guarded by Backend.mu.
type instance struct {
	b        *Backend
	rs       *revState
	name     string    // the slot's; the first incarnation's ID
	created  time.Time // the slot's, for victim order
	reserved bool      // a reserved slot (backend.Reserver): lower priority
	// frozen: published Frozen (Backend.Freeze) until thawed; suspended:
	// its group got SIGSTOP; freezes counts freezes, so a probe that
	// overlapped one is ignored.
	frozen, suspended bool
	freezes           int
	stop              chan struct{} // closed by beginStop
	tail              *tail
	front             *front.Front // the incarnation's proxy; owned by the run goroutine
	ln                net.Listener // the proxy's, bound per incarnation; served by front
	// handler is the incarnation's in-process queue-proxy, published as
	// Instance.Handler (one hop from the activator); nil for other
	// proxies.
	handler http.Handler
	// hold keeps the app's port from everyone else from allocate (or a
	// restart) until the app is first seen listening; run goroutine only.
	hold *portHold

	id          string    // the current (or last) incarnation's
	started     time.Time // when the current incarnation started
	listening   time.Time // when its first readiness probe passed
	live        bool      // an incarnation exists: listed in snapshots
	appAddr     string
	addr        string
	ready       bool
	draining    bool
	state       backend.InstanceState
	pid         int
	restarts    int
	lastExit    *backend.Exit
	nextRestart time.Time
}

// newInstance creates an instance with its addresses already bound, so
// it keeps one Address from its first snapshot on. Called with b.mu held
// (a port pick and a listen are a few microseconds).
func newInstance(b *Backend, rs *revState, id string, now time.Time) *instance {
	in := &instance{
		b: b, rs: rs, name: id, id: id, created: now, started: now, live: true,
		stop:  make(chan struct{}),
		tail:  newTail(b.opts.OutputTailLines),
		state: backend.InstanceStarting,
	}
	// On failure (out of ports or descriptors) setup retries, and the
	// instance gets its Address then.
	_ = in.allocate()
	return in
}

// allocate picks the app's port (kept for the slot's life) and, with a
// proxy, binds the incarnation's proxy listener. Called with b.mu held.
func (in *instance) allocate() error {
	if in.appAddr == "" {
		hold, err := in.b.reservePort()
		if err != nil {
			return fmt.Errorf("pick a port: %w", err)
		}
		in.appAddr = net.JoinHostPort("127.0.0.1", strconv.Itoa(hold.port))
		in.hold = hold
	}
	if in.b.opts.Proxy == nil {
		in.addr = in.appAddr
		return nil
	}
	if in.ln == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("listen for the proxy: %w", err)
		}
		in.ln, in.addr = ln, ln.Addr().String()
	}
	return nil
}

func (in *instance) instanceLocked() backend.Instance {
	return backend.Instance{
		ID:       in.id,
		Revision: in.rs.rev.Name(),
		Address:  in.addr,
		Ready:    in.ready,
		Draining: in.draining,
		Frozen:   in.frozen,
		Started:  in.started,
		Handler:  in.handler,
		// The probe that first passes is a TCP connect to the app (or
		// through its proxy): the moment it was seen listening.
		Listening: in.listening,
		Reserved:  in.reserved,
	}
}

func (in *instance) statusLocked() backend.InstanceStatus {
	var last *backend.Exit
	if in.lastExit != nil {
		e := *in.lastExit
		e.Output = slices.Clone(e.Output)
		last = &e
	}
	st := backend.InstanceStatus{
		Instance:    in.instanceLocked(),
		State:       in.state,
		Restarts:    in.restarts,
		LastExit:    last,
		NextRestart: in.nextRestart,
		Output:      in.tail.snapshot(),
		AppAddress:  in.appAddr,
	}
	if in.pid != 0 {
		st.Detail = "pid " + strconv.Itoa(in.pid)
	}
	return st
}

// beginStop marks the instance Draining and tells its run goroutine to
// drain and stop it. The caller publishes. Called with b.mu held.
func (in *instance) beginStop() {
	if in.draining {
		return
	}
	in.thawLocked() // to see its SIGTERM; a frozen app has nothing in flight
	in.draining = true
	in.state = backend.InstanceDraining
	close(in.stop)
}

// update changes the instance's fields under b.mu and publishes.
func (in *instance) update(f func()) {
	in.b.mu.Lock()
	defer in.b.mu.Unlock()
	f()
	in.b.publish(in.rs)
}

func (in *instance) log() []any {
	return []any{"revision", in.rs.rev.Name(), "instance", in.id}
}

// run supervises the instance until it is stopped: start, probe, restart
// after crashes with exponential backoff, and finally drain and stop.
func (in *instance) run() {
	defer in.b.wg.Done()
	defer in.finish()
	opts := in.b.opts
	backoff := opts.MinRestartBackoff
	for {
		up, stopped := in.runOnce()
		if stopped {
			return
		}
		if up >= 2*opts.MaxRestartBackoff {
			backoff = opts.MinRestartBackoff
		}
		delay := backoff
		backoff = min(2*backoff, opts.MaxRestartBackoff)
		in.update(func() {
			if !in.draining {
				in.state = backend.InstanceBackOff
				in.nextRestart = opts.Clock.Now().Add(delay)
			}
		})
		t := opts.Clock.NewTimer(delay)
		select {
		case <-t.C():
		case <-in.stop:
			// No incarnation runs, so nothing is listed or has
			// traffic: nothing to drain.
			t.Stop()
			return
		}
		// The restart is a new instance: a new ID and Started (see
		// backend.Backend).
		in.update(func() {
			in.restarts++
			in.id = fmt.Sprintf("%s-r%d", in.name, in.restarts)
			in.started = opts.Clock.Now()
			in.listening = time.Time{}
			in.live = true
			in.nextRestart = time.Time{}
			if !in.draining {
				in.state = backend.InstanceStarting
			}
		})
	}
}

// setup completes the incarnation's addresses if newInstance (or the
// restart) could not, and starts its fronting proxy, if any. The app's
// port stays the slot's; the proxy and its Address are the
// incarnation's, so a restarted instance starts with a fresh proxy.
func (in *instance) setup() error {
	b := in.b
	b.mu.Lock()
	var err error
	if in.appAddr == "" || (b.opts.Proxy != nil && in.ln == nil) {
		err = in.allocate()
		b.publish(in.rs)
	}
	inst := in.instanceLocked()
	b.mu.Unlock()
	if err != nil || b.opts.Proxy == nil || in.front != nil {
		return err
	}
	in.front, err = newFront(b, inst, in.ln, in.appAddr, in.rs.spec)
	if err != nil {
		return fmt.Errorf("start proxy: %w", err)
	}
	// Only a queue-proxy does the edge's work for requests handed over
	// in process (hop.Local); any other proxy is reached over Address.
	if qp, ok := in.front.Proxy().(*queueproxy.Proxy); ok {
		b.mu.Lock()
		in.handler = qp
		b.mu.Unlock()
	}
	return nil
}

// endIncarnation closes the crashed incarnation's proxy (which closes
// its listener); the next one gets its own. Run goroutine only.
func (in *instance) endIncarnation() {
	if in.front != nil {
		in.front.Close()
		in.front = nil
	} else if in.ln != nil {
		_ = in.ln.Close()
	}
	in.b.mu.Lock()
	in.ln = nil
	in.handler = nil
	if in.b.opts.Proxy != nil {
		in.addr = ""
	}
	in.b.mu.Unlock()
}

// finish removes the stopped instance from its revision.
func (in *instance) finish() {
	in.hold.release()
	if in.front != nil {
		in.front.Close() // closes in.ln too
	} else if in.ln != nil {
		_ = in.ln.Close()
	}
	b := in.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, port, err := net.SplitHostPort(in.appAddr); err == nil {
		p, _ := strconv.Atoi(port)
		delete(b.ports, p)
	}
	for i, x := range in.rs.insts {
		if x == in {
			in.rs.insts = append(in.rs.insts[:i], in.rs.insts[i+1:]...)
			break
		}
	}
	b.publish(in.rs)
	b.forgetIfEmpty(in.rs)
	b.opts.Logger.Info("instance stopped", in.log()...)
}

// crashed records an unplanned end of the instance's process: the
// incarnation ends and leaves the snapshot (a restart is a new
// instance).
func (in *instance) crashed(e backend.Exit) {
	e.Output = in.tail.snapshot()
	in.b.opts.Logger.Warn("instance crashed", append(in.log(), "code", e.Code, "reason", e.Reason)...)
	in.endIncarnation()
	in.update(func() {
		in.ready = false
		in.live = false
		in.pid = 0
		in.frozen, in.suspended = false, false
		in.lastExit = &e
	})
}

// proc is one started process of an instance.
type proc struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once reaped; cmd.ProcessState is set
	output chan struct{} // closed once the output pipe reached EOF
	rd     *os.File
}

// runOnce starts the process and supervises it until it crashes, misses
// its start timeout, or the instance is stopped. It reports how long the
// process was up and whether the instance was stopped (and is gone).
func (in *instance) runOnce() (up time.Duration, stopped bool) {
	clk := in.b.opts.Clock
	select {
	case <-in.stop:
		in.drain()
		return 0, true
	default:
	}
	if err := in.setup(); err != nil {
		in.crashed(backend.Exit{Code: -1, Reason: err.Error(), Time: clk.Now()})
		return 0, false
	}
	if err := in.holdAppPort(); err != nil {
		in.crashed(backend.Exit{Code: -1, Reason: err.Error(), Time: clk.Now()})
		return 0, false
	}
	p, err := in.start()
	if err != nil {
		in.crashed(backend.Exit{Code: -1, Reason: "start: " + err.Error(), Time: clk.Now()})
		return 0, false
	}
	started := clk.Now()
	in.update(func() {
		in.pid = p.cmd.Process.Pid
		if !in.draining {
			in.state = backend.InstanceStarting
		}
	})
	pr := in.prober()
	reason := in.waitReady(p, pr)
	if reason == "" {
		in.b.opts.Logger.Info("instance ready", append(in.log(), "pid", p.cmd.Process.Pid)...)
		reason = in.serve(p, pr)
	}
	if reason == "stop" {
		in.drain()
		in.terminate(p)
		return clk.Since(started), true
	}
	// Crashed, or missed the start timeout: make sure the whole group is
	// gone before it is restarted.
	in.reap(p)
	in.flushOutput(p)
	code := p.cmd.ProcessState.ExitCode()
	if reason == "exited" {
		reason = p.cmd.ProcessState.String()
	}
	in.crashed(backend.Exit{Code: code, Reason: reason, Time: clk.Now()})
	return clk.Since(started), false
}

// waitReady probes until the probe passes (""), the process exits
// ("exited"), the start timeout passes, or the instance is stopped
// ("stop"). The first probe runs at once, the next ones after 0.5 ms
// plus 2.5 % of the time since the start, at most
// revision.AggressiveProbePeriod (50 ms). Knative probes every 50 ms,
// which adds 25 ms to an average cold start; this finds an app that
// listens after t within about 0.5 ms + t/40 (1.25 ms for a 30 ms start)
// and still sends only ~160 probes (loopback connects, ~20 µs each) in the
// first second and one per 50 ms after it. With Spec.SocketActivation the
// first probe passes: the kernel accepts for the app while it starts.
func (in *instance) waitReady(p *proc, pr probeFunc) string {
	clk := in.b.opts.Clock
	start := clk.Now()
	deadline := clk.NewTimer(in.b.opts.StartTimeout)
	defer deadline.Stop()
	tick := clk.NewTimer(probeBase)
	defer tick.Stop()
	for {
		if in.probeOnce(pr, aggressiveProbeTimeout) == nil {
			// The app listens on its port now, so the hold has done its
			// job; releasing it lets a restart see whether another
			// process took the port meanwhile.
			in.hold.release()
			in.hold = nil
			now := clk.Now()
			in.update(func() {
				in.ready = true
				in.listening = now
				if !in.draining {
					in.state = backend.InstanceRunning
				}
			})
			return ""
		}
		select {
		case <-p.exited:
			return "exited"
		case <-in.stop:
			return "stop"
		case <-deadline.C():
			return fmt.Sprintf("not ready within %v (Options.StartTimeout)", in.b.opts.StartTimeout)
		case <-tick.C():
		}
		tick.Reset(min(probeBase+clk.Since(start)/40, revision.AggressiveProbePeriod))
	}
}

// serve waits, while the instance is ready, for its process to exit
// ("exited") or the instance to be stopped ("stop"). With a
// Spec.Readiness.Period it keeps probing and publishes readiness changes.
func (in *instance) serve(p *proc, pr probeFunc) string {
	var tick <-chan time.Time
	period := in.rs.spec.Readiness.Period
	if period > 0 {
		t := in.b.opts.Clock.NewTicker(period)
		defer t.Stop()
		tick = t.C()
	}
	for {
		select {
		case <-p.exited:
			return "exited"
		case <-in.stop:
			return "stop"
		case <-tick:
			// A frozen app cannot answer: it is neither probed nor marked
			// unready, and a probe a freeze overlapped does not count.
			in.b.mu.Lock()
			frozen, gen := in.frozen, in.freezes
			in.b.mu.Unlock()
			if frozen {
				continue
			}
			ok := in.probeOnce(pr, in.rs.spec.Readiness.Timeout) == nil
			in.update(func() {
				if !in.frozen && in.freezes == gen {
					in.ready = ok
				}
			})
		}
	}
}

// probeOnce runs one probe bounded by timeout (and by a hard stop).
func (in *instance) probeOnce(pr probeFunc, timeout time.Duration) error {
	ctx, cancel := in.b.timeoutCtx(in.b.hard, timeout)
	defer cancel()
	return pr(ctx)
}

// timeoutCtx is context.WithTimeout on the Backend's clock.
func (b *Backend) timeoutCtx(parent context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(parent)
	t := b.opts.Clock.AfterFunc(d, cancel)
	return ctx, func() {
		t.Stop()
		cancel()
	}
}

// prober returns how the instance's readiness is checked: with a
// fronting proxy, the proxy's verdict alone (see Prober), which covers
// the app; else a TCP or HTTP probe of the app as Spec.Readiness says.
func (in *instance) prober() probeFunc {
	if in.front == nil {
		return probe.NewApp(in.appAddr, in.rs.spec.Readiness).Check
	}
	return in.front.Probe
}

// drain calls the host's DrainFunc and then the proxy's Drain, together
// bounded by the drain timeout (cut short by a hard stop).
func (in *instance) drain() {
	b := in.b
	b.mu.Lock()
	inst := in.instanceLocked()
	b.mu.Unlock()
	ctx, cancel := b.timeoutCtx(b.hard, b.drainTimeout(in.rs.spec))
	defer cancel()
	if b.opts.Drain != nil {
		if err := b.opts.Drain(ctx, inst); err != nil {
			b.opts.Logger.Warn("drain hook failed; stopping anyway", append(in.log(), "err", err)...)
		}
	}
	if in.front != nil {
		if err := in.front.Proxy().Drain(ctx); err != nil {
			b.opts.Logger.Warn("proxy drain failed; stopping anyway", append(in.log(), "err", err)...)
		}
	}
}

// terminate sends SIGTERM to the process group, SIGKILL after the stop
// grace period (or at once on a hard stop), and waits until it is reaped.
func (in *instance) terminate(p *proc) {
	in.update(func() { in.state = backend.InstanceStopping })
	if err := terminate(p.cmd.Process); err != nil {
		in.b.opts.Logger.Warn("SIGTERM failed", append(in.log(), "err", err)...)
	}
	t := in.b.opts.Clock.NewTimer(in.b.opts.StopGrace)
	select {
	case <-p.exited:
		t.Stop()
	case <-t.C():
		in.b.opts.Logger.Warn("instance ignored SIGTERM; killing it", append(in.log(), "grace", in.b.opts.StopGrace)...)
	case <-in.b.hard.Done():
		t.Stop()
	}
	// Also reaps whatever the leader left behind in its group.
	in.reap(p)
	in.flushOutput(p)
	in.update(func() {
		in.ready = false
		in.pid = 0
	})
}

// reap SIGKILLs the process group, waits for its leader to be reaped and
// takes the group off the guard: its number may now be reused.
func (in *instance) reap(p *proc) {
	_ = kill(p.cmd.Process)
	<-p.exited
	in.b.guard.remove(p.cmd.Process.Pid)
}

// flushOutput waits (bounded) for the output pipe to drain, then closes
// it, which ends the reader even if a process that escaped the group
// still holds the write end.
func (in *instance) flushOutput(p *proc) {
	t := in.b.opts.Clock.NewTimer(outputFlushTimeout)
	select {
	case <-p.output:
	case <-t.C():
	case <-in.b.hard.Done():
	}
	t.Stop()
	_ = p.rd.Close()
	<-p.output
}

// start launches one process of the instance.
func (in *instance) start() (*proc, error) {
	rd, wr, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	spec := in.rs.spec
	rev := in.rs.rev
	_, port, _ := net.SplitHostPort(in.appAddr)
	env := in.b.opts.Environ
	if env == nil {
		env = os.Environ()
	}
	env = append(env[:len(env):len(env)], "PORT="+port,
		"K_SERVICE="+rev.Configuration(), "K_CONFIGURATION="+rev.Configuration(), "K_REVISION="+rev.Name())
	for _, e := range spec.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	// Last, so the revision cannot override it: it names this host to a
	// later one that looks for leftovers (see removeLeftovers).
	env = append(env, hostEnv+"="+in.b.host)
	cmd := &exec.Cmd{
		Path:        in.rs.path,
		Args:        append(append([]string{}, spec.Command...), spec.Args...),
		Env:         env,
		Dir:         spec.WorkingDir,
		Stdout:      wr,
		Stderr:      wr,
		SysProcAttr: sysProcAttr(),
	}
	var sock *os.File
	if spec.SocketActivation {
		if sock, err = in.socketActivation(cmd); err != nil {
			_ = rd.Close()
			_ = wr.Close()
			return nil, err
		}
	}
	err = in.b.spawn.start(cmd)
	_ = wr.Close() // the child has its copy
	if sock != nil {
		_ = sock.Close() // likewise
	}
	if err != nil {
		_ = rd.Close()
		return nil, err
	}
	// The group id is the leader's pid.
	in.b.guard.add(cmd.Process.Pid)
	if in.reserved {
		nice := spec.Scaling.Reserved(spec.Resources).Nice
		if err := lowerPriority(cmd.Process, nice); err != nil {
			in.b.opts.Logger.Warn("reserved instance: cannot lower its priority; it runs at the default", append(in.log(), "nice", nice, "err", err)...)
		}
	}
	p := &proc{cmd: cmd, exited: make(chan struct{}), output: make(chan struct{}), rd: rd}
	in.b.wg.Add(2)
	go func() {
		defer in.b.wg.Done()
		defer close(p.exited)
		_ = cmd.Wait()
	}()
	go func() {
		defer in.b.wg.Done()
		defer close(p.output)
		name := rev.Name()
		readLines(rd, func(line string) {
			in.tail.add(line)
			in.b.writeLine(name, in.id, line)
		})
	}()
	in.b.opts.Logger.Info("instance started", append(in.log(), "pid", cmd.Process.Pid, "port", port)...)
	return p, nil
}

// probeBase is the shortest interval of waitReady's probes.
const probeBase = 500 * time.Microsecond

// activationShim sets LISTEN_PID to the app's pid, which only the
// child knows: sh's $$ is its own pid, which exec keeps (systemd sets it
// between fork and exec, which os/exec cannot). It costs one sh start,
// about a millisecond.
const activationShim = `LISTEN_PID=$$ exec "$0" "$@"`

// activationShell runs activationShim.
const activationShell = "/bin/sh"

// socketActivation makes cmd start the app systemd's way
// (Spec.SocketActivation): the held port listens now, and the app gets
// it as descriptor 3 with LISTEN_FDS=1 and LISTEN_PID, through
// activationShim. It returns the parent's copy of the descriptor, to
// close once the app started.
func (in *instance) socketActivation(cmd *exec.Cmd) (*os.File, error) {
	if in.hold == nil {
		return nil, errors.New("socket activation: the app's port is not held")
	}
	f, err := in.hold.listenFile()
	if err != nil {
		return nil, fmt.Errorf("socket activation: %w", err)
	}
	cmd.ExtraFiles = []*os.File{f}
	cmd.Env = append(cmd.Env, "LISTEN_FDS=1", "LISTEN_FDNAMES=http")
	cmd.Args = append([]string{"sh", "-c", activationShim, cmd.Path}, cmd.Args[1:]...)
	cmd.Path = activationShell
	return f, nil
}

// holdAppPort makes sure the app's port is held before a (re)start: a
// process that listens on it now is not this instance's app, and would
// answer the readiness probe in its place.
func (in *instance) holdAppPort() error {
	if in.hold != nil {
		return nil
	}
	_, port, _ := net.SplitHostPort(in.appAddr)
	p, _ := strconv.Atoi(port)
	h, err := holdPort(p)
	if err != nil {
		return fmt.Errorf("app port %s is taken by another process: %w", in.appAddr, err)
	}
	in.hold = h
	return nil
}

// maxPortPicks bounds the attempts to find a port no instance of this
// Backend holds.
const maxPortPicks = 32

// reservePort returns a hold on a free loopback TCP port that no other
// instance of b uses, and records the port until the instance is gone.
// The hold (see portHold) keeps the kernel from giving the port to any
// other listener before the app binds it: a port merely found free and
// closed again is handed out anew within microseconds under parallel
// starts, and whoever listens there would pass the instance's readiness
// probe and be sent its traffic. Called with b.mu held.
func (b *Backend) reservePort() (*portHold, error) {
	for range maxPortPicks {
		h, err := holdPort(0)
		if err != nil {
			return nil, err
		}
		if _, taken := b.ports[h.port]; !taken {
			b.ports[h.port] = struct{}{}
			return h, nil
		}
		h.release()
	}
	return nil, fmt.Errorf("no free port after %d picks", maxPortPicks)
}

// newFront serves on ln the proxy that Options.Proxy builds for inst,
// speaking HTTP/1.1 and h2c. The listener stays open if it fails, for
// the next attempt.
func newFront(b *Backend, inst backend.Instance, ln net.Listener, target string, spec revision.Spec) (*front.Front, error) {
	p, err := b.opts.Proxy(inst, target, spec)
	if err == nil && p == nil {
		err = errors.New("Options.Proxy returned a nil Proxy")
	}
	if err != nil {
		return nil, err
	}
	return front.Serve(p, ln, b.opts.Logger.With("instance", inst.ID)), nil
}
