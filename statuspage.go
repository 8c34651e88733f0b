package zeroscale

import (
	"cmp"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"sync"
	"time"
)

// The status page's history: one sample per revision every
// HistoryStep, the last HistoryLength of them (15 minutes), so a
// revision costs a fixed 90 samples whatever its traffic.
const (
	HistoryStep   = 10 * time.Second
	HistoryLength = 90
)

// sample is one revision's state at one HistoryStep.
type sample struct {
	instances int     // serving instances
	rps       float64 // requests routed to it per second over the step
}

// ring is one revision's last HistoryLength samples, oldest first from
// next.
type ring struct {
	s        [HistoryLength]sample
	n, next  int
	requests int64 // the revision's request count at the last sample
}

func (r *ring) add(s sample) {
	r.s[r.next] = s
	r.next = (r.next + 1) % HistoryLength
	r.n = min(r.n+1, HistoryLength)
}

// samples returns the samples, oldest first.
func (r *ring) samples() []sample {
	out := make([]sample, 0, r.n)
	for i := range r.n {
		out = append(out, r.s[(r.next-r.n+i+HistoryLength)%HistoryLength])
	}
	return out
}

// history is every live revision's ring, sampled on the Server's clock.
type history struct {
	mu    sync.Mutex
	step  time.Duration
	rings map[string]*ring
}

// sampleLoop records a sample of every revision each step until ctx ends.
func (s *Server) sampleLoop(ctx context.Context) {
	t := s.o.Clock.NewTicker(s.hist.step)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			s.sample()
		}
	}
}

// sample records one sample per revision and forgets removed revisions.
func (s *Server) sample() {
	h := s.hist
	live := map[string]bool{}
	sts := s.Status()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, svc := range sts {
		for _, r := range svc.Revisions {
			live[r.Name] = true
			rg := h.rings[r.Name]
			var count int64
			if v, ok := s.revs.Load(r.Name); ok {
				count = v.(*rev).requests.Load()
			}
			if rg == nil {
				rg = &ring{requests: count}
				h.rings[r.Name] = rg
			}
			rg.add(sample{instances: r.ActualScale, rps: float64(count-rg.requests) / h.step.Seconds()})
			rg.requests = count
		}
	}
	for name := range h.rings {
		if !live[name] {
			delete(h.rings, name)
		}
	}
}

// samplesOf returns a copy of a revision's samples, oldest first.
func (h *history) samplesOf(name string) []sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rg := h.rings[name]; rg != nil {
		return rg.samples()
	}
	return nil
}

// Chart geometry: a small chart per revision, HistoryLength steps wide.
const (
	chartW, chartH = 360, 64
)

// chart is one revision's chart, ready for the template.
type chart struct {
	Instances, Rate string // SVG polyline points
	InstancesData   string // the instance counts, oldest first, space-separated (for tests and curious users)
	MaxInstances    int
	MaxRate         string
	Width, Height   int
}

// y is value's height on a chart whose top is top.
func y(value, top float64) float64 { return float64(chartH-2) - float64(chartH-4)*value/top }

func newChart(ss []sample) chart {
	c := chart{Width: chartW, Height: chartH}
	maxI, maxR := 1, 1.0
	for _, s := range ss {
		maxI = max(maxI, s.instances)
		maxR = max(maxR, s.rps)
	}
	// The newest sample at the right edge; one step per HistoryLength-th.
	dx := float64(chartW) / float64(HistoryLength-1)
	x0 := float64(chartW) - dx*float64(len(ss)-1)
	var in, rate, data strings.Builder
	for i, s := range ss {
		x := x0 + dx*float64(i)
		if i > 0 { // a step: the count held until this sample
			fmt.Fprintf(&in, "%.1f,%.1f ", x, y(float64(ss[i-1].instances), float64(maxI)))
		}
		fmt.Fprintf(&in, "%.1f,%.1f ", x, y(float64(s.instances), float64(maxI)))
		fmt.Fprintf(&rate, "%.1f,%.1f ", x, y(s.rps, maxR))
		fmt.Fprintf(&data, "%d ", s.instances)
	}
	c.Instances, c.Rate = strings.TrimSpace(in.String()), strings.TrimSpace(rate.String())
	c.InstancesData = strings.TrimSpace(data.String())
	c.MaxInstances, c.MaxRate = maxI, fmt.Sprintf("%.3g", maxR)
	return c
}

// pageRevision is a revision row of the page.
type pageRevision struct {
	RevisionStatus
	Chart chart
}

type pageService struct {
	ServiceStatus
	Ready    bool   // its Ready condition is True
	ReadyWhy string // else its reason
	Revs     []pageRevision
}

type pageData struct {
	Services []pageService
	Step     time.Duration
	Window   time.Duration
	Now      string
}

// statusPage serves the live status page (GET /status, and / on the
// admin listener): HTML and inline SVG, no scripts but the one that
// fetches ?fragment=1 every 2 s and replaces the live part in place.
func (s *Server) statusPage(w http.ResponseWriter, r *http.Request) {
	d := pageData{Step: s.hist.step, Window: s.hist.step * (HistoryLength - 1), Now: s.o.Clock.Now().UTC().Format("15:04:05 UTC")}
	for _, svc := range s.Status() {
		ps := pageService{ServiceStatus: svc}
		if c, ok := svc.Condition(ConditionReady); ok {
			ps.Ready, ps.ReadyWhy = c.Status == ConditionTrue, cmp.Or(string(c.Reason), string(c.Status))
		}
		for _, rv := range svc.Revisions {
			ps.Revs = append(ps.Revs, pageRevision{RevisionStatus: rv, Chart: newChart(s.hist.samplesOf(rv.Name))})
		}
		d.Services = append(d.Services, ps)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	name := "page"
	if r.URL.Query().Get("fragment") == "1" {
		name = "live"
	}
	if err := statusTemplate.ExecuteTemplate(w, name, d); err != nil {
		s.o.Logger.Debug("status page", "err", err)
	}
}

var statusTemplate = template.Must(template.New("page").Parse(`{{define "page"}}<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>zeroscale status</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:1.5em;color:#222;background:#fff}
h1{font-size:1.3em;margin:0 0 .3em} h2{font-size:1.1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;margin:.3em 0} td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}
th{font-weight:600;color:#555} .num{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#1a7f37} .bad{color:#c62828} .muted{color:#777;font-size:.9em}
svg{background:#fafafa;border:1px solid #e3e3e3} .legend span{margin-right:1em}
.i{stroke:#1565c0} .r{stroke:#ef6c00}
</style></head><body>
<h1>zeroscale</h1>
<div id="live">{{template "live" .}}</div>
<script>
// Refresh in place: the server renders the part below, this only swaps it.
setInterval(async () => {
  try {
    const res = await fetch(location.pathname + "?fragment=1", {cache: "no-store"});
    if (res.ok) document.getElementById("live").innerHTML = await res.text();
  } catch (e) {}
}, 2000);
</script>
</body></html>{{end}}
{{define "live"}}<p class="muted">{{.Now}} · charts: the last {{.Window}}, one sample every {{.Step}} ·
<span class="legend"><span style="color:#1565c0">━ instances</span><span style="color:#ef6c00">━ requests/s</span></span> ·
<a href="/metrics">/metrics</a> · <a href="/services">/services</a></p>
{{if not .Services}}<p>No services yet.</p>{{end}}
{{range .Services}}<section class="service" data-service="{{.Name}}">
<h2>{{.Name}} <a class="muted" href="{{.URL}}">{{.URL}}</a>
{{if .Ready}}<span class="ok">Ready</span>{{else}}<span class="bad">{{.ReadyWhy}}</span>{{end}}</h2>
<table><tr><th>revision</th><th class="num">traffic</th><th class="num">instances</th><th class="num">requested</th><th class="num">held</th><th>last {{$.Window}}</th><th></th></tr>
{{range .Revs}}<tr class="revision" data-revision="{{.Name}}">
<td>{{.Name}}</td><td class="num">{{.Percent}}%</td><td class="num instances">{{.ActualScale}}{{if .Frozen}} <span class="muted frozen">{{.Instances}} frozen</span>{{end}}{{if .Reserved}} <span class="muted reserved">({{.Reserved}} reserved)</span>{{end}}</td>
<td class="num">{{if lt .RequestedScale 0}}–{{else}}{{.RequestedScale}}{{end}}</td><td class="num">{{.Held}}</td>
<td><svg class="chart" width="{{.Chart.Width}}" height="{{.Chart.Height}}" viewBox="0 0 {{.Chart.Width}} {{.Chart.Height}}" role="img"
 aria-label="{{.Name}}: instances and requests per second" data-instances="{{.Chart.InstancesData}}">
<polyline class="r" fill="none" stroke-width="1.5" points="{{.Chart.Rate}}"/>
<polyline class="i" fill="none" stroke-width="2" points="{{.Chart.Instances}}"/>
</svg></td>
<td class="muted">max {{.Chart.MaxInstances}} inst<br>max {{.Chart.MaxRate}} req/s</td></tr>
{{end}}</table>
{{range .Traffic}}{{if .Tag}}<p class="muted">tag {{.Tag}} → {{.Revision}} <a href="{{.URL}}">{{.URL}}</a></p>{{end}}{{end}}
</section>{{end}}{{end}}`))
