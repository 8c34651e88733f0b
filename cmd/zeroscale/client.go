package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/knative"
)

// client talks to a zeroscale serve's admin API.
type client struct {
	base      string // e.g. http://127.0.0.1:8081
	token     string
	namespace string
	http      *http.Client
}

// apiError is an answer other than 2xx: the server's Status.
type apiError struct {
	status metav1.Status
}

func (e *apiError) Error() string { return e.status.Message }

// reason is the Status reason ("NotFound", "Invalid", ...).
func (e *apiError) reason() metav1.StatusReason { return e.status.Reason }

// unreachableError means no server answered at the admin address.
type unreachableError struct {
	base string
	err  error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("no zeroscale server answers at %s (start one with 'zeroscale serve', or set --admin or ZEROSCALE_ADMIN): %v", e.base, e.err)
}

func (e *unreachableError) Unwrap() error { return e.err }

func isReason(err error, reason metav1.StatusReason) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.reason() == reason
}

func newClient(base, token, namespace string) *client {
	return &client{base: base, token: token, namespace: namespace, http: &http.Client{Timeout: 5 * time.Minute}}
}

func (c *client) path(kind, name string) string {
	p := zeroscale.KnativeAPIPrefix + url.PathEscape(c.namespace) + "/" + kind
	if name != "" {
		p += "/" + url.PathEscape(name)
	}
	return p
}

// do sends a request and decodes a 2xx JSON answer into out.
func (c *client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/yaml")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &unreachableError{base: c.base, err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		ae := &apiError{}
		if json.Unmarshal(data, &ae.status) != nil || ae.status.Message == "" {
			ae.status = metav1.Status{Code: int32(resp.StatusCode), Message: fmt.Sprintf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))}
		}
		return ae
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer of %s %s: %w", method, path, err)
		}
	}
	return nil
}

func (c *client) getService(ctx context.Context, name string) (*knative.Service, error) {
	var ks knative.Service
	return &ks, c.do(ctx, http.MethodGet, c.path("services", name), nil, &ks)
}

func (c *client) listServices(ctx context.Context) ([]knative.Service, error) {
	var l knative.ServiceList
	return l.Items, c.do(ctx, http.MethodGet, c.path("services", ""), nil, &l)
}

// putService applies (create or update); createService refuses an
// existing service.
func (c *client) putService(ctx context.Context, name string, manifest []byte) (*knative.Service, error) {
	var ks knative.Service
	return &ks, c.do(ctx, http.MethodPut, c.path("services", name), manifest, &ks)
}

func (c *client) createService(ctx context.Context, manifest []byte) (*knative.Service, error) {
	var ks knative.Service
	return &ks, c.do(ctx, http.MethodPost, c.path("services", ""), manifest, &ks)
}

func (c *client) deleteService(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.path("services", name), nil, nil)
}

func (c *client) listRevisions(ctx context.Context, service string) ([]knative.Revision, error) {
	p := c.path("revisions", "")
	if service != "" {
		p += "?labelSelector=" + url.QueryEscape(knative.ServiceLabel+"="+service)
	}
	var l knative.RevisionList
	return l.Items, c.do(ctx, http.MethodGet, p, nil, &l)
}

func (c *client) getRevision(ctx context.Context, name string) (*knative.Revision, error) {
	var r knative.Revision
	return &r, c.do(ctx, http.MethodGet, c.path("revisions", name), nil, &r)
}

func (c *client) deleteRevision(ctx context.Context, name string) error {
	return c.do(ctx, http.MethodDelete, c.path("revisions", name), nil, nil)
}

func (c *client) listRoutes(ctx context.Context) ([]knative.Route, error) {
	var l knative.RouteList
	return l.Items, c.do(ctx, http.MethodGet, c.path("routes", ""), nil, &l)
}

func (c *client) getRoute(ctx context.Context, name string) (*knative.Route, error) {
	var r knative.Route
	return &r, c.do(ctx, http.MethodGet, c.path("routes", name), nil, &r)
}
