// Command proxyhop measures what zeroscale's data plane costs per hop, in
// one run, against baselines measured in the same run: a trivial app
// reached directly, through a plain httputil.ReverseProxy with an idle
// pool sized to the load, through the queueproxy (CC 0 and CC 10), and
// through the whole chain the Server runs (activator -> in-process
// queueproxy -> app, CC 0 and CC 10).
//
//	go run ./bench/proxyhop                 # the full table (~5 min)
//	go run ./bench/proxyhop -duration 2s    # quicker, noisier
//	go run ./bench/proxyhop -kinds direct,rp,server0 -upstreams fast -reps 5 -duration 10s
//	                                        # the front door against a plain proxy
//
// The closed-loop load comes from wrk (one thread, out of process) when
// it is on PATH (-load auto, the default; -load go forces the Go
// client); the open-loop runs always use the Go client. Reps are
// interleaved (every kind once, then again) and medians reported, so
// a shared machine's slow minutes hit every kind alike. The header line
// says which load generator produced the table.
//
// Every role is a separate process (this binary re-executed with -role),
// so CPU seconds (utime+stime from /proc) and RSS are the proxy's own.
// With -pin split (the default, as the reference measurements of
// Knative's queue-proxy), the load generator runs on CPU 0 and the app
// and the proxy share CPU 1 (GOMAXPROCS 1 for both), modelling a 1-vCPU
// instance with the load outside it; -pin shared lets all float.
package main
