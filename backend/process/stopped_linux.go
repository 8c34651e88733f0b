//go:build linux

package process

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// maxStopWait bounds waitStopped.
const maxStopWait = time.Second

// waitStopped waits until the process pid is in the stopped state ("T"
// in /proc/<pid>/stat), as SIGSTOP takes effect asynchronously: only
// once each thread is interrupted. It polls the kernel's state (real
// time: it is the OS's, not the Backend's clock), from 50 µs doubling to
// 5 ms, for at most maxStopWait, and reports whether it saw it stopped
// (a process that is gone counts as stopped).
func waitStopped(pid int) bool {
	path := "/proc/" + strconv.Itoa(pid) + "/stat"
	deadline := time.Now().Add(maxStopWait)
	for wait := 50 * time.Microsecond; ; wait = min(2*wait, 5*time.Millisecond) {
		st, err := os.ReadFile(path)
		if err != nil {
			return true
		}
		// "pid (comm) S …": comm may hold spaces and parentheses.
		if i := bytes.LastIndexByte(st, ')'); i >= 0 && i+2 < len(st) && (st[i+2] == 'T' || st[i+2] == 't') {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(wait)
	}
}
