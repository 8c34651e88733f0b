package queueproxy

import (
	"net"
	"net/http"
	"strings"
)

// setForwarded sets the forwarding headers of out from the inbound
// request in: the client address is appended to X-Forwarded-For;
// X-Forwarded-Proto, X-Forwarded-Host and Forwarded (RFC 7239) are
// passed on when the activator or client set them, else filled in from
// this hop. Like any proxy it cannot vouch for values a client sent.
func setForwarded(in *http.Request, out http.Header) {
	ih := in.Header
	clientIP, _, err := net.SplitHostPort(in.RemoteAddr)
	if err != nil {
		clientIP = ""
	}
	// One backing array for the four single-value headers.
	vals := make([]string, 4)
	set := func(i int, k, v string) { vals[i] = v; out[k] = vals[i : i+1 : i+1] }
	prior := ih["X-Forwarded-For"]
	switch {
	case len(prior) > 0 && clientIP != "":
		set(0, "X-Forwarded-For", strings.Join(prior, ", ")+", "+clientIP)
	case len(prior) > 0:
		set(0, "X-Forwarded-For", strings.Join(prior, ", "))
	case clientIP != "":
		set(0, "X-Forwarded-For", clientIP)
	}
	proto := "http"
	if in.TLS != nil {
		proto = "https"
	}
	if v := ih["X-Forwarded-Proto"]; len(v) > 0 {
		proto = v[0]
	}
	set(1, "X-Forwarded-Proto", proto)
	host := in.Host
	if v := ih["X-Forwarded-Host"]; len(v) > 0 {
		host = v[0]
	}
	set(2, "X-Forwarded-Host", host)
	if v := ih["Forwarded"]; len(v) > 0 {
		out["Forwarded"] = v
		return
	}
	var b strings.Builder
	b.Grow(64 + len(host) + len(prior)*48)
	for _, list := range prior {
		for ip := range strings.SplitSeq(list, ",") {
			if ip = strings.TrimSpace(ip); ip != "" {
				b.WriteString("for=")
				b.WriteString(forwardedNode(ip))
				b.WriteString(", ")
			}
		}
	}
	if clientIP != "" {
		b.WriteString("for=")
		b.WriteString(forwardedNode(clientIP))
		b.WriteByte(';')
	}
	b.WriteString("host=")
	b.WriteString(quoteIfNeeded(host))
	b.WriteString(";proto=")
	b.WriteString(quoteIfNeeded(proto))
	set(3, "Forwarded", b.String())
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
