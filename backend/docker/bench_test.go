package docker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/docker"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/revision"
)

// BenchmarkColdStart starts b.N instances from zero, one after the
// other, on the Docker backend and, as the baseline in the same run, on
// the process backend running the very same static binary; both with an
// in-process queue-proxy. Each start is timed from Scale(1) to the first
// response byte of a GET / through the instance's Address; the Docker
// starts are split into phases (see docker.Timings). Run it with
//
//	go test -run '^$' -bench ColdStart -benchtime 20x ./backend/docker
func BenchmarkColdStart(b *testing.B) {
	needEngine(b)
	db := newBackend(b, docker.Options{Proxy: docker.QueueProxy(testQueueProxy)})
	pb, err := process.New(process.Options{Proxy: process.QueueProxy(testQueueProxy), StopGrace: 5 * time.Second})
	require.NoError(b, err)
	b.Cleanup(func() { _ = pb.Close() })
	var phases [5][]time.Duration // create, start, listening, ready, first byte
	var dockerTotal, processTotal []time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("cold%d-00001", i)
		total, _ := coldStart(b, db, newRevision(b, name, appSpec()))
		dockerTotal = append(dockerTotal, total)
		tm := db.Timings(name)[0]
		phases[0] = append(phases[0], tm.Created.Sub(tm.Begin))
		phases[1] = append(phases[1], tm.Started.Sub(tm.Created))
		phases[2] = append(phases[2], tm.Listening.Sub(tm.Started))
		phases[3] = append(phases[3], tm.Ready.Sub(tm.Listening))
		phases[4] = append(phases[4], total-tm.Ready.Sub(tm.Begin))
		require.NoError(b, db.Remove(b.Context(), name))

		spec := revision.Spec{Command: []string{env.Binary}, Env: []revision.EnvVar{{Name: testapp.HostEnv, Value: "127.0.0.1"}}}
		ptotal, _ := coldStart(b, pb, newRevision(b, "p"+name, spec))
		processTotal = append(processTotal, ptotal)
		require.NoError(b, pb.Remove(b.Context(), "p"+name))
	}
	for i, p := range []string{"create", "start", "listening", "ready", "firstbyte"} {
		b.ReportMetric(ms(pct(phases[i], 50)), "docker-"+p+"-p50-ms")
		b.ReportMetric(ms(pct(phases[i], 95)), "docker-"+p+"-p95-ms")
	}
	b.ReportMetric(ms(pct(dockerTotal, 50)), "docker-p50-ms")
	b.ReportMetric(ms(pct(dockerTotal, 95)), "docker-p95-ms")
	b.ReportMetric(ms(pct(processTotal, 50)), "process-p50-ms")
	b.ReportMetric(ms(pct(processTotal, 95)), "process-p95-ms")
	b.ReportMetric(float64(pct(dockerTotal, 50))/float64(pct(processTotal, 50)), "docker/process-p50")
	b.ReportMetric(0, "ns/op")
}

// coldStart scales rev from zero on be and returns the time from Scale
// to the first byte of GET / through the ready instance.
func coldStart(b *testing.B, be backend.Backend, rev revision.Revision) (time.Duration, backend.Instance) {
	b.Helper()
	ctx := b.Context()
	require.NoError(b, be.Deploy(ctx, rev))
	ch, err := be.Watch(ctx, rev.Name())
	require.NoError(b, err)
	start := time.Now()
	require.NoError(b, be.Scale(ctx, rev.Name(), 1))
	var inst backend.Instance
	for inst.ID == "" {
		select {
		case snap := <-ch:
			if len(snap) == 1 && snap[0].Serving() {
				inst = snap[0]
			}
		case <-time.After(eventTimeout):
			b.Fatalf("%s: not ready within %v", rev.Name(), eventTimeout)
		}
	}
	var first time.Time
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		GotFirstResponseByte: func() { first = time.Now() },
	}), http.MethodGet, "http://"+inst.Address+"/", nil)
	require.NoError(b, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(b, err)
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	require.Equal(b, http.StatusOK, resp.StatusCode)
	return first.Sub(start), inst
}

// BenchmarkIdleInstances measures what idle instances cost the host:
// with 10 revisions of one ready, idle instance each, the test
// process's (the host's) live Go heap, goroutines and CPU time over
// 10 s, per revision, and the engine's side: the container's memory (its
// cgroup) and the docker-proxy process that publishes its port. Run it
// with
//
//	go test -run '^$' -bench IdleInstances -benchtime 1x ./backend/docker
func BenchmarkIdleInstances(b *testing.B) {
	const n, idle = 10, 10 * time.Second
	needEngine(b)
	db := newBackend(b, docker.Options{Proxy: docker.QueueProxy(testQueueProxy)})
	var heap, goroutines, cpu, containerMem, proxyRSS float64
	iters := 0
	for b.Loop() {
		heap0, g0 := liveHeap()
		var published []string
		var names []string
		for i := range n {
			name := fmt.Sprintf("idle%d-%d-00001", iters, i)
			coldStart(b, db, newRevision(b, name, appSpec()))
			names = append(names, name)
			st, err := db.Status(b.Context(), name)
			require.NoError(b, err)
			published = append(published, st.Instances[0].AppAddress)
		}
		_, cpu1 := hostUsage(b)
		time.Sleep(idle) // the measured idle period itself
		_, cpu2 := hostUsage(b)
		heap2, g2 := liveHeap()
		heap += float64(heap2-heap0) / n
		goroutines += float64(g2-g0) / n
		cpu += float64((cpu2 - cpu1).Microseconds()) / 1000 / n / idle.Seconds()
		for i, name := range names {
			containerMem += float64(containerMemory(b, benchContainer(b, db, name))) / n
			proxyRSS += float64(dockerProxyRSS(b, published[i])) / n
		}
		for _, name := range names {
			require.NoError(b, db.Remove(b.Context(), name))
		}
		iters++
	}
	k := float64(iters)
	b.ReportMetric(heap/k/1024, "host-heap-KiB/rev")
	b.ReportMetric(goroutines/k, "host-goroutines/rev")
	b.ReportMetric(cpu/k, "host-cpu-ms/s/rev")
	b.ReportMetric(containerMem/k/1024, "container-mem-KiB/rev")
	b.ReportMetric(proxyRSS/k/1024, "docker-proxy-rss-KiB/rev")
	b.ReportMetric(0, "ns/op")
}

// liveHeap is the live Go heap after a collection, and the goroutines.
func liveHeap() (uint64, int) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, runtime.NumGoroutine()
}

// hostUsage is this process's resident set (bytes) and CPU time.
func hostUsage(b *testing.B) (int64, time.Duration) {
	var ru syscall.Rusage
	require.NoError(b, syscall.Getrusage(syscall.RUSAGE_SELF, &ru))
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	return procRSS(b, "self"), cpu
}

// procRSS is the VmRSS of /proc/<pid>, in bytes (0 if unreadable).
func procRSS(b *testing.B, pid string) int64 {
	data, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	for l := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.Fields(v)[0], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// dockerProxyRSS is the resident set of the docker-proxy serving the
// published address, 0 if there is none (userland proxy disabled).
func dockerProxyRSS(b *testing.B, published string) int64 {
	_, port, _ := strings.Cut(published, ":")
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		cmd, err := os.ReadFile(filepath.Join("/proc", d.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmd, []byte("docker-proxy")) {
			continue
		}
		if slices.Contains(strings.Split(string(cmd), "\x00"), port) {
			return procRSS(b, d.Name())
		}
	}
	return 0
}

// benchContainer is the container ID of rev's single instance.
func benchContainer(b *testing.B, db *docker.Backend, rev string) string {
	st, err := db.Status(b.Context(), rev)
	require.NoError(b, err)
	d := st.Instances[0].Detail // "container <name> (<short id>)"
	i, j := strings.LastIndexByte(d, '('), strings.LastIndexByte(d, ')')
	return d[i+1 : j]
}

// containerMemory is the container's memory usage from one stats read.
func containerMemory(b *testing.B, id string) int64 {
	res, err := cli.ContainerStats(context.Background(), id, client.ContainerStatsOptions{})
	require.NoError(b, err)
	defer res.Body.Close()
	var s struct {
		MemoryStats struct {
			Usage int64            `json:"usage"`
			Stats map[string]int64 `json:"stats"`
		} `json:"memory_stats"`
	}
	require.NoError(b, json.NewDecoder(res.Body).Decode(&s))
	// As docker stats: usage minus the page cache.
	return s.MemoryStats.Usage - s.MemoryStats.Stats["inactive_file"]
}

func pct(ds []time.Duration, p float64) time.Duration {
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
