package revision

import "strings"

// SocketActivationAnnotation opts a revision into systemd-style socket
// activation (Spec.SocketActivation): "true" or "false", parsed by
// ParseSocketActivation. It is zeroscale's own (Knative has none).
const SocketActivationAnnotation = "zeroscale.dev/socket-activation"

// ParseSocketActivation reads SocketActivationAnnotation from
// annotations: false when absent, else its value, or a *FieldError
// naming the annotation and the allowed values.
func ParseSocketActivation(annotations map[string]string) (bool, error) {
	v, ok := annotations[SocketActivationAnnotation]
	if !ok {
		return false, nil
	}
	switch strings.TrimSpace(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	var errs errList
	errs.add(SocketActivationAnnotation, v, `"true" or "false"`)
	return false, errs.err()
}
