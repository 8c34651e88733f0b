//go:build unix

package process

import (
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"sync"
	"syscall"
)

// guardScript is the guard's program, for /bin/sh. It reads "+ PGID" and
// "- PGID" lines from the host on stdin and keeps the set of live
// instance process groups; at end of input it SIGKILLs every group still
// in the set. The host keeps the pipe's write end, close-on-exec, and
// never hands it to anyone, so end of input means the host is gone —
// however it went (SIGKILL, OOM kill, panic, os.Exit) — or it closed the
// Backend, after which the set is empty. It ignores the terminal's
// signals (and runs in its own process group) so it outlives a host
// killed by Ctrl-C. Only shell builtins run: nothing it forks can be left
// behind.
const guardScript = `trap '' INT QUIT HUP TERM
g=' '
while read -r op p; do
  case $op in
  +) g="$g$p " ;;
  -) case $g in *" $p "*) g="${g%% $p *} ${g#* $p }" ;; esac ;;
  esac
done
for p in $g; do kill -9 -"$p" 2>/dev/null; done
`

// guardShell runs guardScript.
const guardShell = "/bin/sh"

// guard is the one watcher process of a Backend that kills every
// instance's whole process group when the host dies. The parent-death
// signal (Linux only) reaches only an instance's direct child; a child it
// forked ("sh -c 'app & …'", a worker pool) would be reparented to init
// and live on. The guard is cheaper than a shim per instance (one process
// per Backend) and changes nothing an app sees: its argv, its signal
// dispositions, its exit status.
//
// A process that leaves its process group (setsid, a daemon) escapes the
// guard; the next Backend started on the machine finds it by its
// hostEnv marker (see removeLeftovers).
type guard struct {
	log *slog.Logger

	mu      sync.Mutex
	groups  map[int]struct{}
	cmd     *exec.Cmd
	w       *os.File
	exited  chan struct{} // closed once cmd is reaped
	warned  bool
	stopped bool
}

func newGuard(log *slog.Logger) *guard {
	return &guard{log: log, groups: make(map[int]struct{})}
}

// add makes the guard kill pgid's group if the host dies.
func (g *guard) add(pgid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.groups[pgid] = struct{}{}
	g.sendLocked(fmt.Sprintf("+ %d\n", pgid))
}

// remove forgets pgid: its group is gone (the instance's final SIGKILL
// was sent and its leader reaped), and the number may be reused.
func (g *guard) remove(pgid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.groups, pgid)
	g.sendLocked(fmt.Sprintf("- %d\n", pgid))
}

// sendLocked writes line to the guard, (re)starting it when it is not
// running; a restarted guard is sent every live group first.
func (g *guard) sendLocked(line string) {
	if g.stopped {
		return
	}
	if g.w != nil {
		if _, err := g.w.WriteString(line); err == nil {
			return
		}
		// The guard died (someone killed it): start a new one.
		g.stopLocked()
	}
	if err := g.startLocked(); err != nil {
		if !g.warned {
			g.warned = true
			g.log.Error("cannot start the process guard: processes an instance forks may outlive a killed host", "err", err)
		}
		return
	}
	for pgid := range g.groups {
		if _, err := fmt.Fprintf(g.w, "+ %d\n", pgid); err != nil {
			return
		}
	}
}

func (g *guard) startLocked() error {
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	cmd := exec.Command(guardShell, "-c", guardScript)
	cmd.Stdin = r
	// Its own group: a signal to the host's group (Ctrl-C) does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	err = cmd.Start()
	_ = r.Close()
	if err != nil {
		_ = w.Close()
		return err
	}
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		_ = cmd.Wait()
	}()
	g.cmd, g.w, g.exited = cmd, w, exited
	return nil
}

// stopLocked ends the guard: at end of input it kills the groups it still
// knows (none after a clean Close) and exits.
func (g *guard) stopLocked() {
	if g.w == nil {
		return
	}
	_ = g.w.Close()
	<-g.exited
	g.cmd, g.w, g.exited = nil, nil, nil
}

// close stops the guard for good; later adds are ignored.
func (g *guard) close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.stopLocked()
	g.stopped = true
}
