package zeroscale

import (
	"net"
	"net/http"
	"net/url"
	"strings"
)

// frontDoor lets plain "localhost" (or 127.0.0.1) reach a service, by
// ServiceHeader or by path prefix, then hands every request to the
// activator, which routes by host.
type frontDoor struct{ s *Server }

func (f *frontDoor) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if f.bareHost(r.Host) {
		if name := r.Header.Get(ServiceHeader); name != "" {
			r = f.retarget(r, name, "")
		} else if seg, rest, ok := firstSegment(r.URL.Path); ok && f.s.hasService(seg) {
			r = f.retarget(r, seg, rest)
		}
	}
	f.s.ctl.Activator().ServeHTTP(w, r)
}

// bareHost reports whether host (with or without port) is the domain
// itself or a loopback address: a request that names no service yet.
func (f *frontDoor) bareHost(host string) bool {
	switch hostname(host) {
	case f.s.o.Domain, "localhost", "127.0.0.1", "::1", "[::1]":
		return true
	}
	return false
}

// hostname returns host without its port or trailing dot, in lower
// case, as routes name it.
func hostname(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return strings.TrimSuffix(strings.ToLower(host), ".")
}

// retarget returns a shallow copy of r addressed to the service (or tag
// host) name — "hello", "hello.default" or "v2-hello" — with path rest
// when rest is not empty.
func (f *frontDoor) retarget(r *http.Request, name, rest string) *http.Request {
	if !strings.Contains(name, ".") {
		name += "." + f.s.o.Namespace
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Host = strings.ToLower(name) + "." + f.s.o.Domain
	r2.Header = r.Header.Clone()
	r2.Header.Del(ServiceHeader)
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
