package main

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/knative"
)

func TestExitCodes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"service", "lisst"}, exitUsage, `unknown command "lisst" for "zeroscale service"`},
		{[]string{"service", "create", "--nope"}, exitUsage, "unknown flag: --nope"},
		{[]string{"service", "create", "hello"}, exitUsage, "requires --image or --cmd"},
		{[]string{"service", "update", "hello"}, exitUsage, "flag(s) not set"},
		{[]string{"service", "list", "-o", "xml"}, exitUsage, `--output "xml"`},
		{[]string{"service", "list", "--admin", "http://127.0.0.1:1"}, exitUnreachable, "no zeroscale server answers at http://127.0.0.1:1"},
		{[]string{"service", "create", "hello", "--cmd", "x", "--port", "h2c:eighty", "--admin", "http://127.0.0.1:1"}, exitUsage, "--port"},
	} {
		var out, errOut bytes.Buffer
		code := run(context.Background(), tc.args, &out, &errOut)
		assert.Equal(t, tc.code, code, "%v: %s", tc.args, errOut.String())
		assert.Contains(t, errOut.String(), tc.err, tc.args)
	}
}

func TestTrafficFlags(t *testing.T) {
	svc := newService("hello")
	f := trafficFlags{tags: []string{"hello-00001=old"}, traffic: []string{"old=50", "@latest=50"}}
	require.NoError(t, f.apply(svc))
	require.Len(t, svc.Spec.Traffic, 2)
	assert.Equal(t, knative.TrafficTarget{Tag: "old", RevisionName: "hello-00001", LatestRevision: new(false), Percent: new(int64(50))}, svc.Spec.Traffic[1])
	assert.Equal(t, knative.TrafficTarget{LatestRevision: new(true), Percent: new(int64(50))}, svc.Spec.Traffic[0])

	// Back to 100 % latest and the tag removed: the old target goes.
	f = trafficFlags{untags: []string{"old"}, traffic: []string{"@latest=100"}}
	require.NoError(t, f.apply(svc))
	assert.Equal(t, []knative.TrafficTarget{{LatestRevision: new(true), Percent: new(int64(100))}}, svc.Spec.Traffic)

	for _, bad := range []trafficFlags{
		{traffic: []string{"@latest=90"}},
		{traffic: []string{"@latest"}},
		{tags: []string{"=x"}},
		{untags: []string{"missing"}},
	} {
		assert.Error(t, bad.apply(newService("hello")), "%+v", bad)
	}
}

func TestEditPairs(t *testing.T) {
	got, err := editPairs(map[string]string{"A": "1", "B": "2"}, []string{"A", "B"}, []string{"B-", "C=3", "A=x"}, "--env")
	require.NoError(t, err)
	assert.Equal(t, [][2]string{{"A", "x"}, {"C", "3"}}, got)
	_, err = editPairs(nil, nil, []string{"novalue"}, "--env")
	assert.ErrorContains(t, err, "want KEY=VALUE")
}
