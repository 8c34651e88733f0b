package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/moby/moby/client"
)

// maxBinaryBytes bounds ImportBinary's executable.
const maxBinaryBytes = 1 << 30

// ImportBinary makes image ref (e.g. "hello:1") from one static
// executable at path (built with CGO_ENABLED=0, so it needs no libc),
// with no base image, pull or registry: an image holding only /app, with
// ENTRYPOINT ["/app"]. It is `docker import` of a one-file tar. c is the
// engine; nil means client.New(client.FromEnv). It returns the image ID.
func ImportBinary(ctx context.Context, c *client.Client, ref, path string) (string, error) {
	bin, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("docker: import %s: %w", path, err)
	}
	if len(bin) > maxBinaryBytes {
		return "", fmt.Errorf("docker: import %s: %d bytes, want at most %d", path, len(bin), maxBinaryBytes)
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(bin)), Typeflag: tar.TypeReg}); err != nil {
		return "", err
	}
	if _, err := tw.Write(bin); err != nil {
		return "", err
	}
	if err := tw.Close(); err != nil {
		return "", err
	}
	if c == nil {
		if c, err = client.New(client.FromEnv); err != nil {
			return "", fmt.Errorf("docker: import %s: %w", path, err)
		}
		defer c.Close()
	}
	res, err := c.ImageImport(ctx, client.ImageImportSource{Source: &buf, SourceName: "-"}, ref,
		client.ImageImportOptions{Changes: []string{`ENTRYPOINT ["/app"]`}})
	if err != nil {
		return "", fmt.Errorf("docker: import %s as %s: %w", path, ref, err)
	}
	defer res.Close()
	_, _ = io.Copy(io.Discard, res)
	ii, err := c.ImageInspect(ctx, ref)
	if err != nil {
		return "", fmt.Errorf("docker: import %s as %s: %w", path, ref, err)
	}
	return ii.ID, nil
}
