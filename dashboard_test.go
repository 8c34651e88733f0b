package zeroscale_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/revision"
)

var (
	promString   = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	promMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promRange    = regexp.MustCompile(`\[[^\]]*\]`)
	promLabels   = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promIdent    = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	labelValues  = regexp.MustCompile(`label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
	promKeywords = []string{"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan"}
)

// promMetrics returns the metric names a PromQL expression selects: the
// identifiers left once strings, label matchers, ranges and label lists
// are cut out, that are neither a function or aggregation (followed by
// "(") nor a keyword.
func promMetrics(expr string) []string {
	s := promString.ReplaceAllString(expr, `""`)
	s = promMatchers.ReplaceAllString(s, " ")
	s = promRange.ReplaceAllString(s, " ")
	s = promLabels.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range promIdent.FindAllStringIndex(s, -1) {
		name := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.") {
			continue // the exponent of a number
		}
		if strings.HasPrefix(strings.TrimLeft(s[loc[1]:], " \t\n"), "(") || slices.Contains(promKeywords, strings.ToLower(name)) {
			continue
		}
		out = append(out, name)
	}
	return out
}

func TestPromMetrics(t *testing.T) {
	assert.Equal(t, []string{"a_total"}, promMetrics(`sum by (revision, code) (rate(a_total{revision=~"$revision"}[$__rate_interval]))`))
	assert.Equal(t, []string{"x_bucket"}, promMetrics(`histogram_quantile(0.99, sum by (le) (rate(x_bucket[5m])))`))
	assert.Equal(t, []string{"t", "r", "p"}, promMetrics(`t{m="a b"} * on (revision) group_left r * on (revision) group_left (x) p / 1e3`))
}

// exported reports whether name is a series name of a scraped family:
// the family itself, or a histogram's _bucket, _sum or _count.
func exported(mfs map[string]*dto.MetricFamily, name string) bool {
	if _, ok := mfs[name]; ok {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if mf, ok := mfs[base]; ok && (mf.GetType() == dto.MetricType_HISTOGRAM || mf.GetType() == dto.MetricType_SUMMARY) {
				return true
			}
		}
	}
	return false
}

// Every query of the Grafana dashboard names metrics the Server really
// exports: checked against its /metrics after a cold start, a request
// timeout while held, and warm requests.
func TestDashboardQueriesResolve(t *testing.T) {
	raw, err := os.ReadFile("dashboards/zeroscale.json")
	require.NoError(t, err)
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	require.NoError(t, json.Unmarshal(raw, &d))
	require.NotEmpty(t, d.Panels)

	o := newObserved(t, zeroscale.Options{}, 300*time.Millisecond)
	for _, spec := range []zeroscale.ServiceSpec{
		{Name: "hello", Template: revision.Spec{Image: "x"}},
		// Held longer than its request timeout: a rejection.
		{Name: "short", Template: revision.Spec{Image: "x", Timeouts: revision.Timeouts{Request: 100 * time.Millisecond}}},
	} {
		_, err := o.srv.Apply(context.Background(), spec)
		require.NoError(t, err)
	}
	for range 3 {
		res, _, _ := o.request(t, nil)
		require.Equal(t, http.StatusOK, res.StatusCode)
	}
	req, err := http.NewRequest("GET", o.url+"/", nil)
	require.NoError(t, err)
	req.Host = "short.default.localhost"
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusGatewayTimeout, res.StatusCode)

	var mfs map[string]*dto.MetricFamily
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		mfs = scrape(t, o.admin)
		assert.Contains(c, mfs, "zeroscale_autoscaler_serving_instances")
		assert.Contains(c, mfs, "zeroscale_activator_rejected_requests_total")
	}, 10*time.Second, 10*time.Millisecond)

	queries := 0
	for _, p := range d.Panels {
		require.NotEmpty(t, p.Targets, "panel %q has no query", p.Title)
		for _, tg := range p.Targets {
			names := promMetrics(tg.Expr)
			assert.NotEmpty(t, names, "panel %q: %s names no metric", p.Title, tg.Expr)
			for _, n := range names {
				assert.True(t, exported(mfs, n), "panel %q: %s: %s is not exported", p.Title, tg.Expr, n)
			}
			queries++
		}
	}
	for _, v := range d.Templating.List {
		if m := labelValues.FindStringSubmatch(v.Definition); m != nil {
			assert.True(t, exported(mfs, m[1]), "variable query %s: %s is not exported", v.Definition, m[1])
		}
	}
	t.Logf("%d panels, %d queries, all resolved", len(d.Panels), queries)
}
