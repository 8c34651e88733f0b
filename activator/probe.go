package activator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/internal/hop"
)

// Defaults of the activator's own instance probing (Knative's activator
// PROBE_FREQUENCY and PROBE_TIMEOUT).
const (
	DefaultProbePeriod  = 200 * time.Millisecond
	DefaultProbeTimeout = 300 * time.Millisecond
	// probeUserAgent marks the activator's probes, as Knative's
	// Knative-Activator-Probe.
	probeUserAgent = "Zeroscale-Activator-Probe"
)

// instanceProbe is the activator's probing of one instance the backend
// does not report ready: while it passes, the instance gets requests.
type instanceProbe struct {
	passed bool
	stop   chan struct{}
}

// probePassedLocked reports whether in, not yet reported ready, passed
// the activator's probe.
func (t *throttler) probePassedLocked(in backend.Instance) bool {
	p := t.probes[in.ID]
	return p != nil && p.passed && !in.Ready && !in.Draining
}

// syncProbesLocked probes every instance of the last snapshot that is
// neither ready nor draining (a new one, or one that turned not ready),
// and stops probing the others: once the backend says ready, its
// readiness governs.
func (t *throttler) syncProbesLocked() {
	if t.h.probePeriod < 0 || t.removed {
		return
	}
	want := make(map[string]backend.Instance, len(t.insts))
	for _, in := range t.insts {
		if !in.Ready && !in.Draining {
			want[in.ID] = in
		}
	}
	for id, p := range t.probes {
		if _, ok := want[id]; !ok {
			close(p.stop)
			delete(t.probes, id)
		}
	}
	for id, in := range want {
		if _, ok := t.probes[id]; ok {
			continue
		}
		if t.probes == nil {
			t.probes = make(map[string]*instanceProbe)
		}
		p := &instanceProbe{stop: make(chan struct{})}
		t.probes[id] = p
		// The ticker is made here, under the lock, so that a fake clock
		// stepped by someone who saw the snapshot applied fires it.
		tick := t.h.clock.NewTicker(t.h.probePeriod)
		go t.probeLoop(in, p, tick)
	}
}

func (t *throttler) stopProbesLocked() {
	for id, p := range t.probes {
		close(p.stop)
		delete(t.probes, id)
	}
}

// probeLoop probes in now and then every probe period until stopped.
// A change of the result rebuilds the candidates: an instance that
// passes gets requests at once, one that stops answering is taken out
// (and probed on).
func (t *throttler) probeLoop(in backend.Instance, p *instanceProbe, tick interface {
	C() <-chan time.Time
	Stop()
}) {
	defer tick.Stop()
	for {
		err := t.probe(in)
		if errors.Is(err, errNotQueueProxy) {
			// The app itself answers at Address: only the backend's
			// readiness can tell; one probe is all it gets.
			t.h.log.Debug("activator: instance is no queue-proxy; not probing it", "revision", t.name, "instance", in.ID, "error", err)
			return
		}
		t.mu.Lock()
		if t.probes[in.ID] != p { // stopped meanwhile
			t.mu.Unlock()
			return
		}
		if passed := err == nil; passed != p.passed {
			p.passed = passed
			t.h.log.Debug("activator: instance probe", "revision", t.name, "instance", in.ID, "passed", passed, "error", err)
			t.rebuildLocked(t.h.clock.Now())
		}
		t.mu.Unlock()
		select {
		case <-p.stop:
			return
		case <-tick.C():
		}
	}
}

// probe asks in's queue-proxy for its health as Knative's activator
// does: 200 with its ready body, within the probe timeout (counted on
// the Handler's clock).
func (t *throttler) probe(in backend.Instance) error {
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	timer := t.h.clock.NewTimer(t.h.probeTimeout)
	defer timer.Stop()
	go func() {
		select {
		case <-timer.C():
			cancel(errors.New("probe timed out"))
		case <-ctx.Done():
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+in.Address+hop.HealthPath, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header[hop.ProbeHeader] = []string{hop.ProbeValue}
	if t.h.secretValue != nil {
		req.Header[hop.ActivatorHeader] = t.h.secretValue
	}
	res, err := t.transport.RoundTrip(req)
	if err != nil {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64))
	switch body := strings.TrimSpace(string(b)); {
	case res.StatusCode == http.StatusOK && body == hop.HealthReady:
		return nil
	case res.StatusCode == http.StatusServiceUnavailable && (body == hop.HealthNotReady || body == hop.HealthDraining):
		return fmt.Errorf("probe %s: %s", in.Address, body)
	default:
		return fmt.Errorf("probe %s: status %d: %w", in.Address, res.StatusCode, errNotQueueProxy)
	}
}

// errNotQueueProxy: what answered the probe is not a queue-proxy.
var errNotQueueProxy = errors.New("not a queue-proxy's answer")

// CheckInPath reports whether requests sent to url (the address clients
// of a revision use, e.g. its Kubernetes Service) reach an activator: it
// sends Knative's activator probe and wants the activator's answer, 200
// "activator"; an instance's queue-proxy or app answers otherwise. Use it
// as autoscaler.Options.ActivatorProbe so that a revision goes to zero
// only once its traffic is routed to the activator. A nil client means
// http.DefaultClient; ctx bounds the attempt.
func CheckInPath(ctx context.Context, client *http.Client, url string) error {
	if client == nil {
		client = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", probeUserAgent)
	req.Header.Set(hop.ProbeHeader, hop.ActivatorProbeValue)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 64))
	if res.StatusCode != http.StatusOK || strings.TrimSpace(string(b)) != hop.ActivatorProbeValue {
		return fmt.Errorf("activator probe %s: status %d: not answered by an activator", url, res.StatusCode)
	}
	return nil
}
