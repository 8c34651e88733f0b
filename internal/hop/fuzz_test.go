package hop

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzForwarded feeds the forwarding headers, Host and RemoteAddr a
// client controls through SetXForwarded (the edge) and SetForwarded (the
// queue-proxy): nothing panics, every value written is a valid header
// field value, untrusted input never reaches the output, and the
// client address is always the last X-Forwarded-For hop.
func FuzzForwarded(f *testing.F) {
	f.Add("203.0.113.7, 198.51.100.2", "https", "evil.example", "for=192.0.2.60", "app.example:8080", "[::1]:5000", true)
	f.Add("", "", "", "", `we"ird\host`, "127.0.0.1:1", false)
	f.Add(",,  ,", "h t t p", "a\tb", `for="[2001:db8::1]:4711"`, "", "not-an-address", true)
	f.Fuzz(func(t *testing.T, xff, xfp, xfh, fwd, host, remote string, trust bool) {
		for _, v := range []string{xff, xfp, xfh, fwd, host, remote} { // remote: the kernel's, never a control byte
			if strings.ContainsAny(v, "\r\n\x00") {
				return // net/http rejects such a request before any handler
			}
		}
		in := &http.Request{RemoteAddr: remote, Host: host, Header: http.Header{}}
		for k, v := range map[string]string{"X-Forwarded-For": xff, "X-Forwarded-Proto": xfp, "X-Forwarded-Host": xfh, "Forwarded": fwd} {
			if v != "" {
				in.Header.Set(k, v)
			}
		}
		valid := func(h http.Header) {
			for k, vs := range h {
				for _, v := range vs {
					require.False(t, strings.ContainsAny(v, "\r\n\x00"), "%s = %q", k, v)
				}
			}
		}
		x := http.Header{}
		SetXForwarded(in, x, trust)
		valid(x)
		if !trust {
			require.NotContains(t, x, "Forwarded")
			if xfh != "" && xfh != host {
				require.NotEqual(t, xfh, x.Get("X-Forwarded-Host"), "an untrusted X-Forwarded-Host is passed on")
			}
			if xfp != "" && xfp != "http" {
				require.Equal(t, "http", x.Get("X-Forwarded-Proto"), "an untrusted X-Forwarded-Proto is passed on")
			}
		}
		full := http.Header{}
		SetForwarded(in, full)
		valid(full)
		require.NotEmpty(t, full.Get("Forwarded"))
	})
}
