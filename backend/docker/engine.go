package docker

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/revision"
)

// engineCallTimeout bounds one engine call that does not wait for a
// container (inspect, create, start, list, remove, logs).
const engineCallTimeout = 30 * time.Second

// maxLogLineBytes bounds one line of a crashed container's log tail.
const maxLogLineBytes = 4096

// engineErr wraps an engine error for op with the backend's error kinds:
// an unreachable engine is ErrTransient naming where the client looked,
// a conflict or a timeout is ErrTransient, anything else the engine
// refused is ErrInvalidArgument.
func (b *Backend) engineErr(op string, err error) error {
	switch {
	case client.IsErrConnectionFailed(err) || isDialError(err):
		env := "DOCKER_HOST is unset; its default is " + client.DefaultDockerHost
		if h, ok := os.LookupEnv(client.EnvOverrideHost); ok {
			env = fmt.Sprintf("DOCKER_HOST=%q", h)
		}
		return fmt.Errorf("docker: %s: %w: the Docker engine is unreachable at %s (%s): %w",
			op, backend.ErrTransient, b.host, env, err)
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded),
		cerrdefs.IsConflict(err), cerrdefs.IsUnavailable(err), cerrdefs.IsDeadlineExceeded(err),
		cerrdefs.IsInternal(err):
		return fmt.Errorf("docker: %s: %w: %w", op, backend.ErrTransient, err)
	default:
		return fmt.Errorf("docker: %s: %w: %w", op, backend.ErrInvalidArgument, err)
	}
}

// isDialError reports a failure to reach the engine's socket that the
// client did not classify (it does for its own dial, not always for a
// connection reset mid-call).
func isDialError(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connect: no such file or directory") ||
		strings.Contains(s, "connect: connection refused") ||
		strings.Contains(s, "connect: permission denied")
}

// resolveImage returns the ID of image in the engine, or
// ErrInvalidArgument saying how to get it there.
func (b *Backend) resolveImage(ctx context.Context, image string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	res, err := b.cli.ImageInspect(ctx, image)
	if cerrdefs.IsNotFound(err) {
		return "", fmt.Errorf("%w: Spec.Image %q is not in the Docker engine at %s, and this backend never pulls: "+
			"build it (docker build -t %s .), load it (docker load -i image.tar), pull it (docker pull %s), "+
			"or import a static binary with docker.ImportBinary",
			backend.ErrInvalidArgument, image, b.host, image, image)
	}
	if err != nil {
		return "", b.engineErr("inspect image "+image, err)
	}
	return res.ID, nil
}

// ownFilter selects the containers of this backend's identity.
func (b *Backend) ownFilter() client.Filters {
	return make(client.Filters).Add("label", LabelIdentity+"="+b.opts.Identity)
}

// removeLeftovers force-removes every container with this backend's
// identity that no live instance owns, and returns how many it removed.
func (b *Backend) removeLeftovers(ctx context.Context) (int, error) {
	res, err := b.cli.ContainerList(ctx, client.ContainerListOptions{All: true, Filters: b.ownFilter()})
	if err != nil {
		return 0, b.engineErr("list containers of identity "+b.opts.Identity, err)
	}
	n := 0
	var errs []error
	for _, c := range res.Items {
		b.mu.Lock()
		_, live := b.byContainer[c.ID]
		b.mu.Unlock()
		if live {
			continue
		}
		_, err := b.cli.ContainerRemove(ctx, c.ID, client.ContainerRemoveOptions{Force: true})
		switch {
		case err == nil:
			n++
		case cerrdefs.IsNotFound(err):
		default:
			errs = append(errs, b.engineErr("remove leftover container "+shortID(c.ID), err))
		}
	}
	return n, errors.Join(errs...)
}

// containerOptions is the ContainerCreate request of in.
func (in *instance) containerOptions() client.ContainerCreateOptions {
	rs := in.rs
	spec := rs.spec
	rev := rs.rev
	port := network.MustParsePort(strconv.Itoa(spec.Port) + "/tcp")
	env := make([]string, 0, len(spec.Env)+4)
	for _, e := range spec.Env {
		env = append(env, e.Name+"="+e.Value)
	}
	env = append(env, "PORT="+strconv.Itoa(spec.Port),
		"K_SERVICE="+rev.Configuration(), "K_CONFIGURATION="+rev.Configuration(), "K_REVISION="+rev.Name())
	cfg := &container.Config{
		Image:        rs.imageID,
		Env:          env,
		Cmd:          spec.Args,
		Entrypoint:   spec.Command,
		WorkingDir:   spec.WorkingDir,
		ExposedPorts: network.PortSet{port: {}},
		Labels: map[string]string{
			LabelIdentity: in.b.opts.Identity,
			LabelRevision: rev.Name(),
			LabelInstance: in.id,
			LabelImage:    spec.Image,
			LabelKind:     in.instanceKind(),
		},
	}
	r := in.resources()
	host := &container.HostConfig{
		// Published on loopback only, on a port the engine picks.
		PortBindings:  network.PortMap{port: {{HostIP: netip.AddrFrom4([4]byte{127, 0, 0, 1}), HostPort: "0"}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled}, // a restart is a new instance
		Resources: container.Resources{
			NanoCPUs:          r.CPULimitMillis * 1_000_000,
			CPUShares:         cpuShares(r.CPURequestMillis),
			Memory:            r.MemoryLimitBytes,
			MemoryReservation: r.MemoryRequestBytes,
		},
	}
	if r.MemoryLimitBytes > 0 {
		host.MemorySwap = r.MemoryLimitBytes // no swap beyond the limit, as Kubernetes
	}
	return client.ContainerCreateOptions{Name: in.name, Config: cfg, HostConfig: host}
}

// instanceKind is LabelKind's value for in.
func (in *instance) instanceKind() string {
	return backend.Instance{Reserved: in.slot.reserved}.Kind()
}

// resources are in's container resources: the spec's, or for a reserved
// instance its profile's (CPU as request and limit, memory as limit; the
// memory request kept when below it).
func (in *instance) resources() revision.Resources {
	r := in.rs.spec.Resources
	if !in.slot.reserved {
		return r
	}
	p := in.rs.spec.Scaling.Reserved(r)
	out := revision.Resources{CPURequestMillis: p.CPUMillis, CPULimitMillis: p.CPUMillis, MemoryLimitBytes: p.MemoryBytes}
	if r.MemoryRequestBytes > 0 && (p.MemoryBytes == 0 || r.MemoryRequestBytes <= p.MemoryBytes) {
		out.MemoryRequestBytes = r.MemoryRequestBytes
	}
	return out
}

// cpuShares converts a CPU request to cgroup shares as the kubelet does
// (1000 m = 1024 shares, at least 2); 0 means unset.
func cpuShares(millis int64) int64 {
	if millis <= 0 {
		return 0
	}
	return max(millis*1024/1000, 2)
}

// publishedAddr is the host address of port in an inspected container.
func publishedAddr(c container.InspectResponse, port int) (string, error) {
	if c.NetworkSettings == nil {
		return "", errors.New("inspect: no network settings")
	}
	p := network.MustParsePort(strconv.Itoa(port) + "/tcp")
	for _, pb := range c.NetworkSettings.Ports[p] {
		if pb.HostPort == "" {
			continue
		}
		ip := pb.HostIP
		if !ip.IsValid() || ip.IsUnspecified() {
			ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
		}
		return netip.AddrPortFrom(ip, mustPort(pb.HostPort)).String(), nil
	}
	return "", fmt.Errorf("inspect: port %s is not published", p)
}

func mustPort(s string) uint16 {
	n, _ := strconv.ParseUint(s, 10, 16)
	return uint16(n)
}

// logTail returns the last n lines of a container's output (stdout and
// stderr interleaved as written), each cut at maxLogLineBytes.
func (b *Backend) logTail(ctx context.Context, id string, n int) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, engineCallTimeout)
	defer cancel()
	rc, err := b.cli.ContainerLogs(ctx, id, client.ContainerLogsOptions{
		ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n),
	})
	if err != nil {
		return nil, b.engineErr("logs of "+shortID(id), err)
	}
	defer rc.Close()
	tw := &tailWriter{max: int64(n) * (maxLogLineBytes + 1)}
	if _, err := stdcopy.StdCopy(tw, tw, rc); err != nil {
		return nil, fmt.Errorf("docker: logs of %s: %w", shortID(id), err)
	}
	var lines []string
	for l := range strings.Lines(string(tw.buf)) {
		l = strings.TrimRight(l, "\r\n")
		if len(l) > maxLogLineBytes {
			l = l[:maxLogLineBytes]
		}
		lines = append(lines, l)
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return lines, nil
}

// tailWriter keeps the last max bytes written to it (up to 2 × max in
// memory).
type tailWriter struct {
	buf []byte
	max int64
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if int64(len(t.buf)) > 2*t.max {
		t.buf = append(t.buf[:0], t.buf[int64(len(t.buf))-t.max:]...)
	}
	return len(p), nil
}

func shortID(id string) string { return id[:min(len(id), 12)] }
