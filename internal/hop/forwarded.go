package hop

import (
	"net"
	"net/http"
	"strings"
)

// SetXForwarded sets the X-Forwarded-For, X-Forwarded-Proto and
// X-Forwarded-Host headers of out, a request proxied from in. With trust
// (in comes from a proxy the host trusts) the client address
// (in.RemoteAddr) is appended to in's X-Forwarded-For, and
// X-Forwarded-Proto and X-Forwarded-Host are passed on as in has them,
// else set from this hop. Without it, in's values are ignored, as the
// edge must (httputil.ReverseProxy's Rewrite stance): all three are set
// from this hop, so a client cannot tell the app it came over https or
// from another address or host. It allocates once, plus once to append
// to an X-Forwarded-For list.
func SetXForwarded(in *http.Request, out http.Header, trust bool) {
	ih := in.Header
	if !trust {
		ih = nil
	}
	setXForwarded(in, ih, out, make([]string, 3))
}

// setXForwarded is SetXForwarded, with the forwarding headers to believe
// (ih, nil for none) and the backing array of the three single-value
// headers passed in, and returns what Forwarded is made of.
func setXForwarded(in *http.Request, ih, out http.Header, vals []string) (prior []string, clientIP, proto, host string) {
	clientIP, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		clientIP = ""
	}
	set := func(i int, k, v string) { vals[i] = v; out[k] = vals[i : i+1 : i+1] }
	prior = ih["X-Forwarded-For"]
	switch {
	case len(prior) > 0 && clientIP != "":
		set(0, "X-Forwarded-For", strings.Join(prior, ", ")+", "+clientIP)
	case len(prior) > 0:
		set(0, "X-Forwarded-For", strings.Join(prior, ", "))
	case clientIP != "":
		set(0, "X-Forwarded-For", clientIP)
	}
	// Values another proxy set are passed on as they came (shared, no
	// copy: nothing downstream writes into a request's header values).
	if v := ih["X-Forwarded-Proto"]; len(v) > 0 {
		proto, out["X-Forwarded-Proto"] = v[0], v
	} else {
		proto = "http"
		if in.TLS != nil {
			proto = "https"
		}
		set(1, "X-Forwarded-Proto", proto)
	}
	if v := ih["X-Forwarded-Host"]; len(v) > 0 {
		host, out["X-Forwarded-Host"] = v[0], v
	} else {
		host = in.Host
		set(2, "X-Forwarded-Host", host)
	}
	return prior, clientIP, proto, host
}

// SetForwarded sets the forwarding headers of out from the inbound
// request in, which comes from a trusted proxy (the activator): the
// X-Forwarded ones as SetXForwarded with trust does, and Forwarded
// (RFC 7239), passed on when the activator or client set it, else
// built as Knative's forwarded shim does: the first element describes
// the client's hop, "for=<first X-Forwarded-For node>;host=…;proto=…"
// (the client's X-Forwarded-Host/-Proto, else this hop's), and every
// later X-Forwarded-For node is an element "for=<node>". The peer of
// this hop is not an element (as in Knative, where the shim sees the
// X-Forwarded-For the request arrived with), unless it is the client
// itself: a request without X-Forwarded-For.
func SetForwarded(in *http.Request, out http.Header) {
	setForwarded(in, in.Header, out, true)
}

// SetEdgeForwarded sets the forwarding headers of out, a request an
// in-process queue-proxy sends straight to the app for the activator
// (see Local): X-Forwarded-* as SetXForwarded with trust does, and
// Forwarded built from them (a client's own Forwarded is never passed
// on, as the activator's proxy drops it), with no element for a
// loopback hop that did not happen.
func SetEdgeForwarded(in *http.Request, out http.Header, trust bool) {
	ih := in.Header
	if !trust {
		ih = nil
	}
	setForwarded(in, ih, out, false)
}

// setForwarded sets X-Forwarded-* believing ih, and Forwarded: in's own
// when passOn and it has one, else built.
func setForwarded(in *http.Request, ih, out http.Header, passOn bool) {
	// One backing array for the four single-value headers.
	vals := make([]string, 4)
	prior, clientIP, proto, host := setXForwarded(in, ih, out, vals[:3])
	if v := in.Header["Forwarded"]; passOn && len(v) > 0 {
		out["Forwarded"] = v
		return
	}
	var b strings.Builder
	b.Grow(64 + len(host) + len(prior)*48)
	first := true
	node := func(ip string) {
		if first {
			b.WriteString("for=")
			b.WriteString(forwardedNode(ip))
			b.WriteString(";host=")
			b.WriteString(quoteIfNeeded(host))
			b.WriteString(";proto=")
			b.WriteString(quoteIfNeeded(proto))
			first = false
			return
		}
		b.WriteString(", for=")
		b.WriteString(forwardedNode(ip))
	}
	for _, list := range prior {
		for ip := range strings.SplitSeq(list, ",") {
			if ip = strings.TrimSpace(ip); ip != "" {
				node(ip)
			}
		}
	}
	if first && clientIP != "" {
		node(clientIP)
	}
	if first { // no address at all: the hop's host and proto only
		b.WriteString("host=")
		b.WriteString(quoteIfNeeded(host))
		b.WriteString(";proto=")
		b.WriteString(quoteIfNeeded(proto))
	}
	vals[3] = b.String()
	out["Forwarded"] = vals[3:4:4]
}

// forwardedNode renders an address as a Forwarded node: IPv6 in quoted
// brackets.
func forwardedNode(ip string) string {
	if strings.Contains(ip, ":") {
		return `"[` + ip + `]"`
	}
	return quoteIfNeeded(ip)
}

// quoteIfNeeded returns v as an RFC 7230 token when it is one, else as a
// quoted string.
func quoteIfNeeded(v string) string {
	for i := 0; i < len(v); i++ {
		if !isTokenChar(v[i]) {
			return quote(v)
		}
	}
	return v
}

func quote(v string) string {
	if !strings.ContainsAny(v, `"\`) {
		return `"` + v + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(v); i++ {
		if v[i] == '"' || v[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(v[i])
	}
	b.WriteByte('"')
	return b.String()
}

func isTokenChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}
