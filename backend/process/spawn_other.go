//go:build !linux

package process

import "os/exec"

// spawner starts processes directly: without a parent-death signal the
// forking thread does not matter.
type spawner struct{ done chan struct{} }

func newSpawner() *spawner { return &spawner{done: make(chan struct{})} }

func (s *spawner) start(cmd *exec.Cmd) error {
	select {
	case <-s.done:
		return errClosed
	default:
		return cmd.Start()
	}
}

func (s *spawner) stop() { close(s.done) }
