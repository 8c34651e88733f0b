package process_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/process"
	"github.com/zeroscale/zeroscale/internal/testapp"
	"github.com/zeroscale/zeroscale/queueproxy"
	"github.com/zeroscale/zeroscale/revision"
)

// With Spec.SocketActivation the app is handed its listening socket
// (LISTEN_FDS, LISTEN_PID naming it, descriptor 3): it serves on its
// port without binding it, behind the queue-proxy, and again after a
// crash and restart.
func TestSocketActivation(t *testing.T) {
	b := newBackend(t, process.Options{Proxy: process.QueueProxy(queueproxy.Options{})})
	rev := deploy(t, b, "socket-00001", testapp.Serve, func(s *revision.Spec) { s.SocketActivation = true })
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]
	st := status(t, b, rev.Name()).Instances[0]
	require.Equal(t, "ok\n", get(t, "http://"+inst.Address+"/"))
	require.Equal(t, "true", get(t, "http://"+st.AppAddress+"/activated"), "the app was handed its socket, LISTEN_PID naming it")
	// activation.Listen took the variables away from the app's children.
	require.Empty(t, get(t, "http://"+st.AppAddress+"/env?name=LISTEN_FDS"))

}

// A restarted app is handed a socket again.
func TestSocketActivationRestart(t *testing.T) {
	b := newBackend(t, process.Options{})
	rev := deploy(t, b, "socket-00002", testapp.Serve, func(s *revision.Spec) { s.SocketActivation = true })
	ch, err := b.Watch(t.Context(), rev.Name())
	require.NoError(t, err)
	require.NoError(t, b.Scale(t.Context(), rev.Name(), 1))
	inst := next(t, ch, "ready", readyCount(1))[0]
	if resp, err := http.Get("http://" + inst.Address + "/crash"); err == nil {
		_ = resp.Body.Close()
	}
	restarted := next(t, ch, "restarted and ready", func(s []backend.Instance) bool {
		return len(s) == 1 && s[0].Ready && s[0].ID != inst.ID
	})[0]
	require.Equal(t, "true", get(t, "http://"+restarted.Address+"/activated"))
	require.True(t, strings.HasPrefix(restarted.ID, inst.ID), "a restart of the slot: %s after %s", restarted.ID, inst.ID)
}
