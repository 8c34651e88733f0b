package backend_test

import (
	"testing"

	"github.com/zeroscale/zeroscale/backend"
)

func TestInstanceServing(t *testing.T) {
	for _, tc := range []struct {
		in   backend.Instance
		want bool
	}{
		{backend.Instance{}, false},
		{backend.Instance{Ready: true}, true},
		{backend.Instance{Ready: true, Draining: true}, false},
		{backend.Instance{Draining: true}, false},
	} {
		if got := tc.in.Serving(); got != tc.want {
			t.Errorf("Instance{Ready: %t, Draining: %t}.Serving() = %t, want %t", tc.in.Ready, tc.in.Draining, got, tc.want)
		}
	}
}
