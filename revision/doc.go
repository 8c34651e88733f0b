// Package revision owns the immutable unit of deployment: a Spec (what an
// instance runs and how it scales), Revisions stamped from it by a
// Configuration (hello-00001, hello-00002, … only when the template
// really changes), and the autoscaling settings with Knative's annotation
// names, defaults and ranges (Config, Scaling, ScalingParams).
package revision
