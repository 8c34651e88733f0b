// Kubernetes puts a zeroscale Server in front of a Kubernetes cluster:
// each revision of the service is a Deployment at zero replicas in the
// chosen namespace, scaled up by the Server's autoscaler on the first
// request and back to zero when idle. Each pod runs the app and the
// queue-proxy sidecar (an image of cmd/queue-proxy you build and push);
// the Server dials pod IPs directly, so it must run where pod IPs are
// reachable (in the cluster, or on a node).
//
//	go run ./examples/kubernetes -kubeconfig ~/.kube/config -namespace apps \
//	    -image registry.example.com/hello:1 -queue-proxy-image registry.example.com/queue-proxy:v1
//	curl -H 'Host: hello.default.localhost' http://127.0.0.1:8080/
package main
