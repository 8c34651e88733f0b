package edge

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestListenerBoundsAndLightReserve(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refused := make(chan string, 4)
	l := &Listener{Listener: inner, Max: 16, MaxPerClient: 15, OnRefuse: func(b string) { refused <- b }}
	t.Cleanup(func() { _ = l.Close() })
	accepted := make(chan net.Conn, 32)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(src string) {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", inner.Addr().String())
		require.NoError(t, err)
		t.Cleanup(func() { _ = c.Close() })
	}
	// A heavy client fills all but the light clients' eighth (2 of 16).
	for range 15 {
		dial("127.0.0.1")
	}
	// A light client still gets the reserve, up to Max.
	dial("127.0.0.2")
	dial("127.0.0.2")
	dial("127.0.0.3")
	var got []net.Conn
	for len(got) < 16 {
		got = append(got, <-accepted)
	}
	// The heavy client's 15th (in the reserve) and the third light one (over Max).
	assert.Equal(t, "listener", <-refused)
	assert.Equal(t, "listener", <-refused)
	assert.Equal(t, 16, l.Open())

	require.NoError(t, got[0].Close())
	_ = got[0].Close() // a second Close does not release twice
	assert.Equal(t, 15, l.Open())
}
