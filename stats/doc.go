// Package stats defines what flows from the data plane to the autoscaler:
// the per-period Stat an instance's queue-proxy or an activator reports,
// the Reporter interface it is pushed through in-process, and the JSON
// wire format a remote queue-proxy serves for scraping.
//
// It is a leaf package so that queueproxy, activator and autoscaler can
// share it without importing each other.
package stats
