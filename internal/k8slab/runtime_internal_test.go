package k8slab

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestExpand(t *testing.T) {
	vals := map[string]string{"POD_IP": "127.64.0.2", "PORT": "8080"}
	for in, want := range map[string]string{
		"plain":                 "plain",
		"$(POD_IP):$(PORT)":     "127.64.0.2:8080",
		"$$(POD_IP)":            "$(POD_IP)",
		"$(UNKNOWN) stays":      "$(UNKNOWN) stays",
		"unterminated $(POD_IP": "unterminated $(POD_IP",
		"$":                     "$",
	} {
		assert.Equal(t, want, expand(in, vals), "expand(%q)", in)
	}
}
