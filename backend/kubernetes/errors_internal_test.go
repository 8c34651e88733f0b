package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/zeroscale/zeroscale/backend"
)

func TestAPIErrorMapping(t *testing.T) {
	gr := schema.GroupResource{Group: "apps", Resource: "deployments"}
	for _, tc := range []struct {
		err  error
		want error
	}{
		{apierrors.NewNotFound(gr, "r"), backend.ErrNotDeployed},
		{apierrors.NewInvalid(schema.GroupKind{Group: "apps", Kind: "Deployment"}, "r", field.ErrorList{field.Invalid(field.NewPath("spec"), 1, "bad")}), backend.ErrInvalidArgument},
		{apierrors.NewForbidden(gr, "r", errors.New("rbac")), backend.ErrInvalidArgument},
		{apierrors.NewBadRequest("bad"), backend.ErrInvalidArgument},
		{apierrors.NewConflict(gr, "r", errors.New("changed")), backend.ErrTransient},
		{apierrors.NewTooManyRequests("slow down", 1), backend.ErrTransient},
		{apierrors.NewServerTimeout(gr, "patch", 1), backend.ErrTransient},
		{apierrors.NewTimeoutError("timeout", 1), backend.ErrTransient},
		{apierrors.NewInternalError(errors.New("boom")), backend.ErrTransient},
		{apierrors.NewServiceUnavailable("down"), backend.ErrTransient},
		{apierrors.NewUnauthorized("expired"), backend.ErrTransient},
		{fmt.Errorf("dial tcp: connection refused"), backend.ErrTransient},
		{context.DeadlineExceeded, backend.ErrTransient},
	} {
		err := apiError("Scale", "r-00001", tc.err)
		assert.ErrorIs(t, err, tc.want, "%v", tc.err)
		assert.ErrorIs(t, err, tc.err)
		assert.Contains(t, err.Error(), "Scale r-00001")
	}
	err := apiError("Scale", "r", context.Canceled)
	assert.ErrorIs(t, err, context.Canceled)
	assert.False(t, errors.Is(err, backend.ErrTransient) || errors.Is(err, backend.ErrInvalidArgument) || errors.Is(err, backend.ErrNotDeployed))
	assert.NoError(t, apiError("Scale", "r", nil))
}
