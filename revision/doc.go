// Package revision owns the immutable unit of deployment.
//
// A Spec says what one instance runs (an image or a command, env, port,
// resources, timeouts, readiness probe) and how it scales (Scaling:
// Knative's autoscaling.knative.dev/* settings, parsed from and rendered
// to annotations by ParseAnnotations and Scaling.Annotations). A
// Configuration holds a service's latest Spec and stamps an immutable
// Revision (hello-00001, hello-00002, …) only when the Spec's content
// really changes; it also accepts bring-your-own revision names and
// tracks the latest created and latest ready revisions.
//
// The host-wide defaults of these settings are the autoscaler's
// (autoscaler.Config, Knative's config-autoscaler): autoscaler.Config.Resolve
// combines them with a Spec into the numbers the autoscaler runs on.
//
// Beyond Knative, zeroscale.dev/scale-floor-schedule gives a revision a
// min-scale that follows the calendar (Schedule, ParseSchedule):
// "Mon-Fri 08:00-18:00 Europe/Berlin = 2" keeps two instances in office
// hours, zeroscale.dev/scale-floor-lead-time starts each window early so
// they are warm when it opens, and the larger of it and min-scale wins.
//
// Every invalid value is rejected with a *FieldError naming the field or
// annotation key, the value, and what is allowed.
package revision
