package docker

import (
	"bytes"
	"context"
	"io"

	"github.com/moby/moby/api/pkg/stdcopy"
	"github.com/moby/moby/client"
)

// following reports whether container output is followed.
func (b *Backend) following() bool { return b.opts.Output != nil || b.opts.OutputFunc != nil }

// follow streams container cid's output to Options.Output and
// OutputFunc until the container stops or ctx ends, then closes done.
func (in *instance) follow(ctx context.Context, cid string, done chan<- struct{}) {
	b := in.b
	defer b.wg.Done()
	defer close(done)
	rc, err := b.cli.ContainerLogs(ctx, cid, client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		if ctx.Err() == nil {
			b.opts.Logger.Warn("cannot follow the container's output", append(in.log(), "err", err)...)
		}
		return
	}
	defer rc.Close()
	lw := &lineWriter{emit: func(line string) { b.writeLine(in.rs.rev.Name(), in.id, line) }}
	_, _ = stdcopy.StdCopy(lw, lw, rc)
	lw.flush()
}

// writeLine sends one output line to Options.Output and OutputFunc.
func (b *Backend) writeLine(rev, id, line string) {
	if f := b.opts.OutputFunc; f != nil {
		f(rev, id, line)
	}
	if w := b.opts.Output; w != nil {
		b.outMu.Lock()
		defer b.outMu.Unlock()
		_, _ = io.WriteString(w, rev+"/"+id+": "+line+"\n")
	}
}

// lineWriter splits what is written to it into lines of at most
// maxLogLineBytes, without their newline.
type lineWriter struct {
	buf  []byte
	emit func(string)
}

func (l *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.buf = append(l.buf, p...)
			p = nil
		} else {
			l.buf = append(l.buf, p[:i]...)
			p = p[i+1:]
			l.flush()
		}
		for len(l.buf) >= maxLogLineBytes {
			l.emit(string(l.buf[:maxLogLineBytes]))
			l.buf = append(l.buf[:0], l.buf[maxLogLineBytes:]...)
		}
	}
	return n, nil
}

// flush emits a pending partial line.
func (l *lineWriter) flush() {
	if len(l.buf) > 0 {
		l.emit(string(bytes.TrimSuffix(l.buf, []byte("\r"))))
		l.buf = l.buf[:0]
	}
}
