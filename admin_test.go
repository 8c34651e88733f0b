package zeroscale_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/zeroscale/zeroscale"
	"github.com/zeroscale/zeroscale/autoscaler"
	"github.com/zeroscale/zeroscale/backend"
	"github.com/zeroscale/zeroscale/backend/fake"
	"github.com/zeroscale/zeroscale/knative"
)

const helloYAML = `apiVersion: serving.knative.dev/v1
kind: Service
metadata:
  name: hello
spec:
  template:
    metadata:
      annotations:
        autoscaling.knative.dev/initial-scale: "0"
    spec:
      containers:
        - image: example.com/hello
          env:
            - name: TARGET
              value: ENV
`

const apiPath = zeroscale.KnativeAPIPrefix + "default/"

// call sends method path with body (YAML) and decodes the JSON answer
// into out when it is not nil.
func call(t *testing.T, base, method, path, body string, out any) int {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if out != nil {
		require.NoError(t, json.Unmarshal(b, out), "%s", b)
	}
	return resp.StatusCode
}

func TestAdminKnativeAPI(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	admin := httptest.NewServer(f.srv.AdminHandler())
	defer admin.Close()

	var ks knative.Service
	require.Equal(t, http.StatusCreated, call(t, admin.URL, "POST", apiPath+"services", strings.ReplaceAll(helloYAML, "ENV", "one"), &ks))
	assert.Equal(t, "hello-00001", ks.Status.LatestCreatedRevisionName)
	assert.Equal(t, "default", ks.Namespace)
	assert.Equal(t, "user-container", ks.Spec.Template.Spec.Containers[0].Name, "defaults filled in")
	ready, ok := ks.Status.Condition(knative.ConditionReady)
	require.True(t, ok)
	assert.Equal(t, knative.StatusTrue, ready.Status, "initial scale 0: ready at once")
	assert.True(t, strings.HasPrefix(ks.Status.URL, "http://hello.default.localhost:"), ks.Status.URL)

	var st metav1.Status
	assert.Equal(t, http.StatusConflict, call(t, admin.URL, "POST", apiPath+"services", helloYAML, &st))
	assert.Equal(t, metav1.StatusReasonAlreadyExists, st.Reason)

	// An update with a changed env stamps a new revision, and a 50/50
	// split with a tag routes to both.
	update := strings.ReplaceAll(helloYAML, "ENV", "two") + `  traffic:
    - revisionName: hello-00001
      percent: 50
      tag: old
    - latestRevision: true
      percent: 50
`
	require.Equal(t, http.StatusOK, call(t, admin.URL, "PUT", apiPath+"services/hello", update, &ks))
	assert.Equal(t, "hello-00002", ks.Status.LatestCreatedRevisionName)
	assert.Equal(t, int64(2), ks.Generation)
	require.Len(t, ks.Status.Traffic, 2, "%+v", ks.Status.Traffic)
	assert.Equal(t, "old", ks.Status.Traffic[0].Tag)
	assert.Equal(t, "hello-00001", ks.Status.Traffic[0].RevisionName)
	assert.Contains(t, ks.Status.Traffic[0].URL, "old-hello.default.localhost")
	assert.Equal(t, "hello-00002", ks.Status.Traffic[1].RevisionName)

	var revs knative.RevisionList
	require.Equal(t, http.StatusOK, call(t, admin.URL, "GET", apiPath+"revisions?labelSelector=serving.knative.dev/service=hello", "", &revs))
	require.Len(t, revs.Items, 2)
	assert.Equal(t, "hello-00002", revs.Items[0].Name, "newest first")
	assert.Equal(t, "2", revs.Items[0].Labels[knative.ConfigurationGenerationLabel])
	assert.Equal(t, "two", revs.Items[0].Spec.Containers[0].Env[0].Value)

	var routes knative.RouteList
	require.Equal(t, http.StatusOK, call(t, admin.URL, "GET", apiPath+"routes", "", &routes))
	require.Len(t, routes.Items, 1)
	assert.Len(t, routes.Items[0].Status.Traffic, 2)

	// A routed revision is not deleted; once its traffic moved, it is.
	assert.Equal(t, http.StatusConflict, call(t, admin.URL, "DELETE", apiPath+"revisions/hello-00001", "", &st))
	assert.Equal(t, metav1.StatusReasonConflict, st.Reason)
	require.Equal(t, http.StatusOK, call(t, admin.URL, "PUT", apiPath+"services/hello", strings.ReplaceAll(helloYAML, "ENV", "two"), &ks))
	assert.Equal(t, "hello-00002", ks.Status.LatestCreatedRevisionName, "same template: no new revision")
	assert.Equal(t, http.StatusOK, call(t, admin.URL, "DELETE", apiPath+"revisions/hello-00001", "", nil))
	assert.Equal(t, http.StatusNotFound, call(t, admin.URL, "GET", apiPath+"revisions/hello-00001", "", nil))
	assert.Equal(t, http.StatusConflict, call(t, admin.URL, "DELETE", apiPath+"revisions/hello-00002", "", nil), "the current template's revision")

	var list knative.ServiceList
	require.Equal(t, http.StatusOK, call(t, admin.URL, "GET", apiPath+"services", "", &list))
	require.Len(t, list.Items, 1)

	require.Equal(t, http.StatusOK, call(t, admin.URL, "DELETE", apiPath+"services/hello", "", nil))
	assert.Equal(t, http.StatusNotFound, call(t, admin.URL, "GET", apiPath+"services/hello", "", &st))
	assert.Equal(t, metav1.StatusReasonNotFound, st.Reason)
	assert.Equal(t, http.StatusNotFound, call(t, admin.URL, "DELETE", apiPath+"services/hello", "", nil))
}

func TestAdminRejectsBadInputNamingTheField(t *testing.T) {
	f := newFixture(t, fake.Options{}, zeroCfg())
	admin := httptest.NewServer(f.srv.AdminHandler())
	defer admin.Close()

	var st metav1.Status
	typo := strings.Replace(helloYAML, "      containers:", "      containerConcurency: 5\n      containers:", 1)
	require.Equal(t, http.StatusUnprocessableEntity, call(t, admin.URL, "PUT", apiPath+"services/hello", typo, &st))
	assert.Equal(t, metav1.StatusReasonInvalid, st.Reason)
	require.Len(t, st.Details.Causes, 1)
	assert.Equal(t, "spec.template.spec.containerConcurency", st.Details.Causes[0].Field)
	assert.Equal(t, `unknown field: did you mean "containerConcurrency"?`, st.Details.Causes[0].Message)

	reserved := strings.Replace(helloYAML, "TARGET", "PORT", 1)
	require.Equal(t, http.StatusUnprocessableEntity, call(t, admin.URL, "PUT", apiPath+"services/hello", reserved, &st))
	assert.Equal(t, `"PORT" is a reserved environment variable: spec.template.spec.containers[0].env[0].name`, st.Message)

	other := strings.Replace(helloYAML, "name: hello", "name: hello\n  namespace: prod", 1)
	require.Equal(t, http.StatusUnprocessableEntity, call(t, admin.URL, "PUT", apiPath+"services/hello", other, &st))
	assert.Equal(t, "metadata.namespace", st.Details.Causes[0].Field)

	assert.Equal(t, http.StatusBadRequest, call(t, admin.URL, "PUT", apiPath+"services/other", helloYAML, &st), "name mismatch")
	assert.Equal(t, http.StatusBadRequest, call(t, admin.URL, "PUT", apiPath+"services/hello", helloYAML+"---\n"+helloYAML, &st))
	assert.Equal(t, http.StatusBadRequest, call(t, admin.URL, "PUT", apiPath+"services/hello", "a: [", &st))
	assert.Equal(t, http.StatusNotFound, call(t, admin.URL, "GET", zeroscale.KnativeAPIPrefix+"prod/services", "", &st))

	// A form post from a web page cannot write.
	resp, err := http.Post(admin.URL+apiPath+"services", "text/plain", strings.NewReader(helloYAML))
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnsupportedMediaType, resp.StatusCode)
	assert.False(t, hasService(f.srv, "hello"))

	// Nor can a page that rebinds its own name to 127.0.0.1.
	req, err := http.NewRequest("DELETE", admin.URL+apiPath+"services/hello", nil)
	require.NoError(t, err)
	req.Host = "evil.example.com"
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
}

func hasService(s *zeroscale.Server, name string) bool {
	_, err := s.ServiceStatus(name)
	return err == nil
}

func TestAdminToken(t *testing.T) {
	srv, err := zeroscale.New(zeroscale.Options{AdminToken: "s3cret", NewBackend: fakeBackend})
	require.NoError(t, err)
	defer func() { require.NoError(t, srv.Shutdown(context.Background())) }()
	admin := httptest.NewServer(srv.AdminHandler())
	defer admin.Close()

	var st metav1.Status
	assert.Equal(t, http.StatusUnauthorized, call(t, admin.URL, "GET", apiPath+"services", "", &st))
	assert.Equal(t, metav1.StatusReasonUnauthorized, st.Reason)
	req, err := http.NewRequest("GET", admin.URL+apiPath+"services", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Host = "admin.example.com" // any host with a token
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
	resp, err = http.Get(admin.URL + "/healthz")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "health needs no token")
}

// publicListener is a listener that claims a routable address; it is
// never accepted from.
type publicListener struct{ closed bool }

func (l *publicListener) Accept() (net.Conn, error) { return nil, net.ErrClosed }
func (l *publicListener) Close() error              { l.closed = true; return nil }
func (l *publicListener) Addr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 8081}
}

func TestServeAdminRefusesPublicListenerWithoutToken(t *testing.T) {
	srv, err := zeroscale.New(zeroscale.Options{NewBackend: fakeBackend})
	require.NoError(t, err)
	defer func() { require.NoError(t, srv.Shutdown(context.Background())) }()
	ln := &publicListener{}
	err = srv.ServeAdmin(ln)
	require.ErrorContains(t, err, "not loopback: set Options.AdminToken")
	assert.True(t, ln.closed)
}

func fakeBackend(drain backend.DrainFunc) (backend.Backend, error) {
	return fake.New(fake.Options{Drain: drain})
}

// A manifest the Server refuses (here: initial scale 0 where the host's
// Config does not allow it) changes nothing, not even the rendered spec.
func TestAdminRefusedApplyChangesNothing(t *testing.T) {
	f := newFixture(t, fake.Options{}, autoscaler.Config{})
	admin := httptest.NewServer(f.srv.AdminHandler())
	defer admin.Close()
	plain := strings.Replace(helloYAML, `        autoscaling.knative.dev/initial-scale: "0"`, `        autoscaling.knative.dev/max-scale: "3"`, 1)
	require.Equal(t, http.StatusCreated, call(t, admin.URL, "PUT", apiPath+"services/hello", plain, nil))
	var st metav1.Status
	require.Equal(t, http.StatusUnprocessableEntity, call(t, admin.URL, "PUT", apiPath+"services/hello", helloYAML, &st))
	assert.Contains(t, st.Message, "initial-scale")
	var ks knative.Service
	require.Equal(t, http.StatusOK, call(t, admin.URL, "GET", apiPath+"services/hello", "", &ks))
	assert.Equal(t, map[string]string{"autoscaling.knative.dev/max-scale": "3"}, ks.Spec.Template.Annotations)
	assert.Equal(t, int64(1), ks.Generation)
}
