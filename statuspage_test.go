package zeroscale_test

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/internal/testenv"
	"github.com/zeroscale/zeroscale/revision"
)

var instancesData = regexp.MustCompile(`data-revision="hello-00001"[\s\S]*?data-instances="([0-9 ]*)"`)

// chartOf returns the instance counts hello-00001's chart shows in html.
func chartOf(html string) []string {
	m := instancesData.FindStringSubmatch(html)
	if m == nil {
		return nil
	}
	return strings.Fields(m[1])
}

func get(t *testing.T, url string) string {
	t.Helper()
	res, err := http.Get(url)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return string(b)
}

// rose reports whether counts start at zero and end above it.
func rose(counts []string) bool {
	return len(counts) >= 2 && counts[0] == "0" && counts[len(counts)-1] != "0"
}

// The status page shows a service at zero, then, after a request, its
// chart rising to one instance: over plain HTTP, and as headless
// Chromium renders it (a screenshot is kept in $ZEROSCALE_SCREENSHOT_DIR
// when set).
func TestStatusPage(t *testing.T) {
	opts := zeroscale.Options{}
	zeroscale.SetHistoryStep(&opts, 200*time.Millisecond) // an 18 s window: the zeros stay in it while Chromium starts
	o := newObserved(t, opts, 0)
	_, err := o.srv.Apply(context.Background(), zeroscale.ServiceSpec{Name: "hello", Template: revision.Spec{Image: "x"}})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		counts := chartOf(get(t, o.admin+"/status?fragment=1"))
		assert.GreaterOrEqual(c, len(counts), 5)
		assert.NotContains(c, counts, "1")
	}, 10*time.Second, 10*time.Millisecond, "samples at zero")
	res, _, _ := o.request(t, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		assert.True(c, rose(chartOf(get(t, o.admin+"/status?fragment=1"))))
	}, 10*time.Second, 10*time.Millisecond, "the chart rises to one instance")

	page := get(t, o.admin+"/")
	for _, want := range []string{"<svg", `data-service="hello"`, "hello-00001", "100%", `fetch(location.pathname + "?fragment=1"`} {
		assert.Contains(t, page, want)
	}

	chromium := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		testenv.Unavailable(t, "no chromium on PATH (Debian: apt-get install chromium)")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	headless := func(args ...string) []byte {
		args = append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
			"--user-data-dir=" + t.TempDir()}, args...)
		out, err := exec.CommandContext(ctx, chromium, args...).Output()
		require.NoError(t, err, "%s %s", chromium, strings.Join(args, " "))
		return out
	}
	dom := string(headless("--dump-dom", o.admin+"/status"))
	assert.Contains(t, dom, "hello-00001")
	assert.Contains(t, dom, "100%")
	assert.True(t, rose(chartOf(dom)), "the chart Chromium renders rises after the request at zero: %v", chartOf(dom))

	dir := os.Getenv("ZEROSCALE_SCREENSHOT_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	shot := filepath.Join(dir, "status-page.png")
	headless("--screenshot="+shot, "--window-size=1000,420", "--hide-scrollbars", o.admin+"/status")
	fi, err := os.Stat(shot)
	require.NoError(t, err)
	assert.Greater(t, fi.Size(), int64(5000), "a screenshot with something in it")
	t.Logf("screenshot: %s (%d bytes)", shot, fi.Size())
}
