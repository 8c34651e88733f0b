package hop

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSetForwarded(t *testing.T) {
	for _, tc := range []struct {
		name   string
		remote string
		host   string
		in     http.Header
		want   http.Header
	}{
		{
			name: "first hop", remote: "127.0.0.1:5000", host: "app.example",
			want: http.Header{
				"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"app.example"},
				"Forwarded": {"for=127.0.0.1;host=app.example;proto=http"},
			},
		},
		{
			name: "behind a proxy, IPv6, host with port", remote: "[::1]:5000", host: "app.example:8080",
			in: http.Header{"X-Forwarded-For": {"203.0.113.7, 198.51.100.2"}, "X-Forwarded-Proto": {"https"}},
			want: http.Header{
				"X-Forwarded-For": {"203.0.113.7, 198.51.100.2, ::1"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"app.example:8080"},
				// Knative's shim: the client's hop first, with its
				// proto and host; the next proxy after it.
				"Forwarded": {`for=203.0.113.7;host="app.example:8080";proto=https, for=198.51.100.2`},
			},
		},
		{
			name: "IPv6 client straight here", remote: "[::1]:5000", host: "app.example",
			want: http.Header{"Forwarded": {`for="[::1]";host=app.example;proto=http`}},
		},
		{
			name: "existing Forwarded kept", remote: "127.0.0.1:1", host: `we"ird`,
			in: http.Header{"Forwarded": {"for=192.0.2.60"}, "X-Forwarded-Host": {"orig.example"}},
			want: http.Header{
				"X-Forwarded-For": {"127.0.0.1"}, "X-Forwarded-Proto": {"http"}, "X-Forwarded-Host": {"orig.example"},
				"Forwarded": {"for=192.0.2.60"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := &http.Request{RemoteAddr: tc.remote, Host: tc.host, Header: tc.in}
			if in.Header == nil {
				in.Header = http.Header{}
			}
			out := http.Header{}
			SetForwarded(in, out)
			for k, v := range tc.want {
				assert.Equal(t, []string{v[0]}, out[k], k)
			}
			// SetXForwarded sets the same X-Forwarded headers and no
			// Forwarded.
			xout := http.Header{}
			SetXForwarded(in, xout, true)
			for k, v := range tc.want {
				if k == "Forwarded" {
					assert.Nil(t, xout[k], "SetXForwarded sets no Forwarded")
				} else {
					assert.Equal(t, []string{v[0]}, xout[k], "SetXForwarded: %s", k)
				}
			}
		})
	}
	assert.Equal(t, `"a\"b\\c"`, quote(`a"b\c`))
}

// Untrusted, the client's forwarding headers are ignored: all three are
// this hop's.
func TestSetXForwardedUntrusted(t *testing.T) {
	in := &http.Request{RemoteAddr: "192.0.2.9:5000", Host: "app.example", Header: http.Header{
		"X-Forwarded-For": {"203.0.113.7"}, "X-Forwarded-Proto": {"https"}, "X-Forwarded-Host": {"evil.example"},
	}}
	out := http.Header{}
	SetXForwarded(in, out, false)
	for k, v := range map[string]string{"X-Forwarded-For": "192.0.2.9", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "app.example"} {
		assert.Equal(t, []string{v}, out[k], k)
	}
}
