//go:build linux

package process

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// hostEnv marks every instance process (and, inherited, everything it
// forks) with the host that started it: "PID.STARTTIME", the host's pid
// and its start time in clock ticks since boot (/proc/PID/stat field 22),
// which together name one process for the machine's uptime even when pids
// are reused.
const hostEnv = "ZEROSCALE_PROCESS_HOST"

// maxLeftoverPasses bounds the scans of removeLeftovers: a leftover may
// fork between a scan and its SIGKILL, and its child is found by the next.
const maxLeftoverPasses = 3

// hostID is this process's hostEnv value.
func hostID() string {
	st, err := procStartTime(os.Getpid())
	if err != nil {
		return strconv.Itoa(os.Getpid())
	}
	return fmt.Sprintf("%d.%d", os.Getpid(), st)
}

// procStartTime reads a process's start time from /proc/PID/stat.
func procStartTime(pid int) (uint64, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	// Fields after the command name start at field 3 (state); starttime
	// is field 22.
	if len(f) < 20 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.ParseUint(f[19], 10, 64)
}

// procPPID reads a process's parent pid from /proc/PID/stat.
func procPPID(pid int) (int, error) {
	f, err := procStatFields(pid)
	if err != nil {
		return 0, err
	}
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	return strconv.Atoi(f[1])
}

// procStatFields returns the fields of /proc/PID/stat after the
// parenthesised command name (which may hold spaces and parentheses).
func procStatFields(pid int) ([]string, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	return strings.Fields(string(b[i+1:])), nil
}

// hostAlive reports whether the host named by a hostEnv value still runs.
func hostAlive(id string) bool {
	pidStr, stStr, withStart := strings.Cut(id, ".")
	pid, err := strconv.Atoi(pidStr)
	if err != nil || pid <= 0 {
		return false
	}
	if !withStart { // hostID could not read its start time
		return syscall.Kill(pid, 0) == nil
	}
	f, err := procStatFields(pid)
	// A zombie is a host that died and was not reaped yet.
	return err == nil && len(f) >= 20 && f[0] != "Z" && f[19] == stStr
}

// envValue returns the last value of key in a NUL-separated environment
// block (exec keeps the last of duplicates).
func envValue(environ []byte, key string) (string, bool) {
	prefix := []byte(key + "=")
	val, found := "", false
	for kv := range bytes.SplitSeq(environ, []byte{0}) {
		if v, ok := bytes.CutPrefix(kv, prefix); ok {
			val, found = string(v), true
		}
	}
	return val, found
}

// removeLeftovers SIGKILLs every process on the machine that an instance
// of a host that no longer runs left behind: the processes whose hostEnv
// names a dead host. The guard kills an instance's process group when its
// host dies; this finds what left the group (setsid, a daemon) or ran
// while no guard could (no /bin/sh). Processes of other users, of live
// hosts, this process and its ancestors are never touched. It returns the
// pids it killed.
func removeLeftovers(log *slog.Logger) []int {
	spare := map[int]bool{}
	for pid := os.Getpid(); pid > 1 && !spare[pid]; {
		spare[pid] = true
		ppid, err := procPPID(pid)
		if err != nil {
			break
		}
		pid = ppid
	}
	var killed []int
	alive := map[string]bool{}
	uid := uint32(os.Getuid())
	for range maxLeftoverPasses {
		n := len(killed)
		ents, err := os.ReadDir("/proc")
		if err != nil {
			log.Warn("cannot look for leftover instance processes", "err", err)
			return killed
		}
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || spare[pid] {
				continue
			}
			// Only this user's processes, even when root can read others'.
			fi, err := os.Stat("/proc/" + e.Name())
			if err != nil {
				continue
			}
			if st, ok := fi.Sys().(*syscall.Stat_t); !ok || st.Uid != uid {
				continue
			}
			environ, err := os.ReadFile("/proc/" + e.Name() + "/environ")
			if err != nil {
				continue // gone, or another user's
			}
			host, ok := envValue(environ, hostEnv)
			if !ok {
				continue
			}
			live, seen := alive[host]
			if !seen {
				live = hostAlive(host)
				alive[host] = live
			}
			if live {
				continue
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err == nil {
				killed = append(killed, pid)
			}
		}
		if len(killed) == n {
			break
		}
	}
	if len(killed) > 0 {
		log.Warn("killed processes left behind by instances of a host that is gone", "pids", killed)
	}
	return killed
}
