package traffic

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// BareHost lets a request to the bare domain (or to a loopback address:
// "localhost", "127.0.0.1", "::1") name the route it is for, by a
// header or by the first segment of its path, and hands every request
// on to Next, which routes by host (a Table, or the activator with a
// Table as its picker). So "curl -H 'Zeroscale-Service: hello'
// localhost:8080" and "curl localhost:8080/hello/x" reach the route
// hello (the latter as "/x"), as "curl hello.default.localhost:8080/x"
// does. A request to any other host passes unchanged.
type BareHost struct {
	// Next serves every request. Required.
	Next http.Handler
	// Table resolves a path's first segment: only a segment naming one
	// of its routes in Namespace is taken (and stripped from the path).
	// Nil turns path routing off.
	Table *Table
	// Namespace of the routes a bare name ("hello") means; "" means
	// DefaultNamespace.
	Namespace string
	// Domain is the routes' domain, itself a bare host; "" means
	// DefaultDomain.
	Domain string
	// Header, when set, names the route of a bare-host request: "hello",
	// "hello.<namespace>", or a tag host's name ("v2-hello"). It is
	// removed before Next sees the request. "" turns header routing off.
	Header string
}

func (b *BareHost) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if b.bare(r.Host) {
		if name := b.headerValue(r); name != "" {
			r = b.retarget(r, name, "")
		} else if seg, rest, ok := firstSegment(r.URL.Path); ok && b.known(seg) {
			r = b.retarget(r, seg, rest)
		}
	}
	b.Next.ServeHTTP(w, r)
}

func (b *BareHost) headerValue(r *http.Request) string {
	if b.Header == "" {
		return ""
	}
	return r.Header.Get(b.Header)
}

func (b *BareHost) namespace() string {
	if b.Namespace == "" {
		return DefaultNamespace
	}
	return b.Namespace
}

func (b *BareHost) domain() string {
	if b.Domain == "" {
		return DefaultDomain
	}
	return strings.ToLower(b.Domain)
}

// bare reports whether host (with or without port) is the domain
// itself or a loopback address: a request that names no route yet.
func (b *BareHost) bare(host string) bool {
	// Only a host with a colon may have a port: a portless Host (as
	// most clients send it) would cost SplitHostPort an error
	// allocation on every request.
	if strings.IndexByte(host, ':') >= 0 {
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
	}
	switch strings.TrimSuffix(strings.ToLower(host), ".") {
	case b.domain(), "localhost", "127.0.0.1", "::1", "[::1]":
		return true
	}
	return false
}

func (b *BareHost) known(name string) bool {
	if b.Table == nil {
		return false
	}
	_, ok := b.Table.Route(b.namespace(), name)
	return ok
}

// retarget returns a shallow copy of r addressed to the route (or tag
// host) name, with path rest when rest is not empty.
func (b *BareHost) retarget(r *http.Request, name, rest string) *http.Request {
	if !strings.Contains(name, ".") {
		name += "." + b.namespace()
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Host = strings.ToLower(name) + "." + b.domain()
	if b.Header != "" {
		r2.Header = r.Header.Clone()
		r2.Header.Del(b.Header)
	}
	if rest != "" {
		u := new(url.URL)
		*u = *r.URL
		u.Path = rest
		u.RawPath = ""
		r2.URL = u
		r2.RequestURI = u.RequestURI()
	}
	return r2
}

// firstSegment splits "/hello/x/y" into "hello" and "/x/y" ("/hello"
// gives "/").
func firstSegment(p string) (seg, rest string, ok bool) {
	if len(p) < 2 || p[0] != '/' {
		return "", "", false
	}
	seg, rest, _ = strings.Cut(p[1:], "/")
	return seg, "/" + rest, seg != ""
}
