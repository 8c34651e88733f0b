package front

import (
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// NewQueueProxy builds the *queueproxy.Proxy fronting inst: base with
// Upstream, Revision, Instance, ContainerConcurrency, Timeouts and
// Readiness taken from the instance, its app's address (target) and its
// revision's spec, and base.Logger given the instance's ID. It is what
// the backends' QueueProxy option builders return.
func NewQueueProxy(base queueproxy.Options, inst backend.Instance, target string, spec revision.Spec) (Proxy, error) {
	o := base
	o.Upstream = target
	o.Revision = inst.Revision
	o.Instance = inst.ID
	o.ContainerConcurrency = spec.ContainerConcurrency
	o.Timeouts = spec.Timeouts
	o.Protocol = spec.Protocol
	o.Readiness = spec.Readiness
	if o.Logger != nil {
		o.Logger = o.Logger.With("instance", inst.ID)
	}
	p, err := queueproxy.New(o)
	if err != nil {
		return nil, err // not a typed nil *Proxy in the interface
	}
	return p, nil
}
