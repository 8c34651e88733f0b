package traffic

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/zeroscale/zeroscale/revision"
)

func TestSpecValidateAccepts(t *testing.T) {
	for name, s := range map[string]Spec{
		"latest":             {Traffic: []Target{{LatestRevision: true, Percent: 100}}},
		"pinned":             {Traffic: []Target{{RevisionName: "shop-00001", Percent: 100}}},
		"split and 0% tag":   {Traffic: []Target{{LatestRevision: true, Percent: 100}, {RevisionName: "shop-00002", Tag: "preview"}}},
		"other config":       {Traffic: []Target{{LatestRevision: true, ConfigurationName: "cart", Percent: 60}, {LatestRevision: true, Percent: 40, Tag: "v1"}}},
		"rollout":            {Traffic: []Target{{LatestRevision: true, Percent: 100}}, RolloutDuration: 2 * time.Minute},
		"63-char tag":        {Traffic: []Target{{LatestRevision: true, Percent: 100, Tag: strings.Repeat("a", 63)}}},
		"qualified rev name": {Traffic: []Target{{RevisionName: "Shop_1.v2", Percent: 100}}},
	} {
		t.Run(name, func(t *testing.T) {
			if err := s.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSpecValidateRejects(t *testing.T) {
	latest := func(p int) Target { return Target{LatestRevision: true, Percent: p} }
	for _, tc := range []struct {
		name  string
		spec  Spec
		field string
		msg   string
	}{
		{"empty", Spec{}, "traffic", "Traffic targets sum to 0, want 100"},
		{"sum 90", Spec{Traffic: []Target{latest(90)}}, "traffic", "Traffic targets sum to 90, want 100"},
		{"sum 110", Spec{Traffic: []Target{latest(60), {RevisionName: "a", Percent: 50}}}, "traffic", "Traffic targets sum to 110, want 100"},
		{"percent over", Spec{Traffic: []Target{{RevisionName: "a", Percent: -20}, {RevisionName: "b", Percent: 120}}},
			"traffic[1].percent", "120 out of range [0, 100]"},
		{"percent negative", Spec{Traffic: []Target{{RevisionName: "a", Percent: -1}, latest(101)}},
			"traffic[0].percent", "-1 out of range [0, 100]"},
		{"both", Spec{Traffic: []Target{{RevisionName: "a", LatestRevision: true, Percent: 100}}},
			"traffic[0].latestRevision", `may not set revisionName "a" when latestRevision is true`},
		{"neither", Spec{Traffic: []Target{latest(50), {Percent: 50}}},
			"traffic[1]", "expected exactly one of revisionName or latestRevision, got neither"},
		{"config with revision", Spec{Traffic: []Target{{RevisionName: "a", ConfigurationName: "c", Percent: 100}}},
			"traffic[0]", "expected exactly one, got both: revisionName, configurationName"},
		{"bad revision name", Spec{Traffic: []Target{{RevisionName: "a b", Percent: 100}}},
			"traffic[0].revisionName", `invalid name "a b": ` + qualifiedNameRule},
		{"bad configuration name", Spec{Traffic: []Target{{LatestRevision: true, ConfigurationName: "-c", Percent: 100}}},
			"traffic[0].configurationName", `invalid name "-c": ` + qualifiedNameRule},
		{"tag upper case", Spec{Traffic: []Target{latest(100), {RevisionName: "a", Tag: "V2"}}},
			"traffic[1].tag", `not a DNS 1035 label: "V2": ` + dns1035Rule},
		{"tag digit first", Spec{Traffic: []Target{{LatestRevision: true, Tag: "2v", Percent: 100}}},
			"traffic[0].tag", `not a DNS 1035 label: "2v": ` + dns1035Rule},
		{"duplicate tag", Spec{Traffic: []Target{{LatestRevision: true, Tag: "v2", Percent: 50}, {RevisionName: "a"}, {RevisionName: "b", Tag: "v2", Percent: 50}}},
			"traffic[0].tag, traffic[2].tag", `Multiple definitions for "v2"`},
		{"rollout fraction", Spec{Traffic: []Target{latest(100)}, RolloutDuration: 1500 * time.Millisecond},
			"rolloutDuration", "rollout-duration=1.5s is not at second precision"},
		{"rollout negative", Spec{Traffic: []Target{latest(100)}, RolloutDuration: -time.Minute},
			"rolloutDuration", "rollout-duration=-1m0s must be positive"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.spec.Validate()
			requireFieldError(t, err, tc.field, tc.msg)
		})
	}
}

// requireFieldError checks that err holds a *revision.FieldError for field with
// message msg.
func requireFieldError(t *testing.T, err error, field, msg string) {
	t.Helper()
	var all []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		all = j.Unwrap()
	} else {
		all = []error{err}
	}
	for _, e := range all {
		var fe *revision.FieldError
		if errors.As(e, &fe) && fe.Field == field && fe.Message == msg {
			assert.Contains(t, err.Error(), msg+": "+field)
			return
		}
	}
	t.Fatalf("no FieldError %s: %s in:\n%v", field, msg, err)
}

func TestSpecValidateReportsEveryError(t *testing.T) {
	err := Spec{Traffic: []Target{
		{RevisionName: "a", Percent: 120, Tag: "x"},
		{Percent: 5, Tag: "x"},
	}}.Validate()
	requireFieldError(t, err, "traffic[0].percent", "120 out of range [0, 100]")
	requireFieldError(t, err, "traffic[1]", "expected exactly one of revisionName or latestRevision, got neither")
	requireFieldError(t, err, "traffic[0].tag, traffic[1].tag", `Multiple definitions for "x"`)
	requireFieldError(t, err, "traffic", "Traffic targets sum to 125, want 100")
}

func TestParseRolloutDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"": 0, "0s": 0, "120s": 2 * time.Minute, "1h": time.Hour, "90s": 90 * time.Second} {
		d, err := ParseRolloutDuration(map[string]string{RolloutDurationAnnotation: in})
		if err != nil || d != want {
			t.Errorf("ParseRolloutDuration(%q) = %v, %v; want %v", in, d, err, want)
		}
	}
	if d, err := ParseRolloutDuration(nil); err != nil || d != 0 {
		t.Errorf("ParseRolloutDuration(nil) = %v, %v; want 0", d, err)
	}

	for in, msg := range map[string]string{
		"abc":   `invalid value "abc": want a duration in whole seconds such as "120s"`,
		"120":   `invalid value "120": want a duration in whole seconds such as "120s"`,
		"1.5s":  "rollout-duration=1.5s is not at second precision",
		"200ms": "rollout-duration=200ms is not at second precision",
		"-10s":  "rollout-duration=-10s must be positive",
	} {
		_, err := ParseRolloutDuration(map[string]string{RolloutDurationAnnotation: in})
		requireFieldError(t, err, RolloutDurationAnnotation, msg)
	}
}

func TestNames(t *testing.T) {
	for s, want := range map[string]bool{"a": true, "a-1": true, "1a": false, "a-": false, "A": false, "": false,
		"abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij0123": false} {
		if got := isDNS1035Label(s); got != want {
			t.Errorf("isDNS1035Label(%q) = %v", s, got)
		}
	}
	for s, want := range map[string]bool{"a.b": true, "a..b": false, "a.b.": false, "-a.b": false, "1.2": true} {
		if got := isDNS1123Subdomain(s); got != want {
			t.Errorf("isDNS1123Subdomain(%q) = %v", s, got)
		}
	}
}
