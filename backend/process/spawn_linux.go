//go:build linux

package process

import (
	"os/exec"
	"runtime"
)

// spawner starts processes from one goroutine locked to its OS thread.
// Linux delivers the parent-death signal when the *thread* that forked the
// child exits, not the process; the Go runtime may retire a thread that
// another goroutine locked and never unlocked, so forking from an
// arbitrary thread could kill a healthy instance. The locked thread lives
// as long as the Backend. fork/exec is serialised by syscall.ForkLock
// anyway, so one spawner costs no parallelism.
type spawner struct {
	reqs chan spawnReq
	done chan struct{}
	exit chan struct{}
}

type spawnReq struct {
	cmd *exec.Cmd
	res chan error
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan spawnReq), done: make(chan struct{}), exit: make(chan struct{})}
	go func() {
		defer close(s.exit)
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		for {
			select {
			case r := <-s.reqs:
				r.res <- r.cmd.Start()
			case <-s.done:
				return
			}
		}
	}()
	return s
}

// start runs cmd.Start on the spawner's thread.
func (s *spawner) start(cmd *exec.Cmd) error {
	res := make(chan error, 1)
	select {
	case s.reqs <- spawnReq{cmd: cmd, res: res}:
		return <-res
	case <-s.done:
		return errClosed
	}
}

// stop ends the spawner goroutine and waits for it.
func (s *spawner) stop() {
	close(s.done)
	<-s.exit
}
