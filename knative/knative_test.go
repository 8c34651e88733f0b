package knative_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	"github.com/zeroscale/zeroscale/knative"
	"github.com/zeroscale/zeroscale/revision"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/invalid")

// decodeConfig is what a host does with a manifest: decode, then
// default, validate and convert each Service.
func decodeConfig(data []byte) ([]knative.Config, error) {
	svcs, err := knative.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out []knative.Config
	for _, s := range svcs {
		c, err := knative.ToConfig(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// TestGoldenErrors pins every rejection's text: Knative's wording where
// Knative has one (knative.dev/pkg/apis.FieldError), with full paths.
func TestGoldenErrors(t *testing.T) {
	files, err := filepath.Glob("testdata/invalid/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			_, err = decodeConfig(data)
			require.Error(t, err)
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				require.NoError(t, os.WriteFile(golden, []byte(err.Error()+"\n"), 0o644))
			}
			want, err2 := os.ReadFile(golden)
			require.NoError(t, err2, "run go test -update to create it")
			assert.Equal(t, string(want), err.Error()+"\n")
		})
	}
}

func TestErrorsArePaths(t *testing.T) {
	data, err := os.ReadFile("testdata/invalid/out-of-bounds.yaml")
	require.NoError(t, err)
	_, err = decodeConfig(data)
	fes := knative.Errors(err)
	require.Len(t, fes, 2)
	assert.Equal(t, []string{"spec.template.spec.containerConcurrency"}, fes[0].Paths())
	assert.Equal(t, "expected 0 <= 1001 <= 1000", fes[0].Message)
	assert.Equal(t, []string{"spec.template.spec.timeoutSeconds"}, fes[1].Paths())
}

// TestRoundTrip: a Service converts to a Config and renders back to the
// same Service (with Knative's defaults), and that converts to the same
// Config again; its YAML decodes strictly to the same Service.
func TestRoundTrip(t *testing.T) {
	files, err := filepath.Glob("testdata/valid/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			require.NoError(t, err)
			svcs, err := knative.Decode(bytes.NewReader(data))
			require.NoError(t, err)
			require.Len(t, svcs, 1)
			c, err := knative.ToConfig(svcs[0])
			require.NoError(t, err)

			back := knative.FromConfig(c)
			want := svcs[0].DeepCopy()
			want.SetDefaults()
			// What FromConfig cannot know: the container's own name.
			want.Spec.Template.Spec.Containers[0].Name = knative.DefaultContainerName
			assertSameService(t, want, back)

			c2, err := knative.ToConfig(back)
			require.NoError(t, err)
			assert.Equal(t, c, c2)

			out, err := yaml.Marshal(back)
			require.NoError(t, err)
			again, err := knative.Decode(bytes.NewReader(out))
			require.NoError(t, err, "%s", out)
			assertSameService(t, back, again[0])
		})
	}
}

// assertSameService compares through JSON, so resource quantities
// compare by value and nil and empty maps alike.
func assertSameService(t *testing.T, want, got *knative.Service) {
	t.Helper()
	w, err := yaml.Marshal(want)
	require.NoError(t, err)
	g, err := yaml.Marshal(got)
	require.NoError(t, err)
	assert.Equal(t, string(w), string(g))
}

func TestDefaults(t *testing.T) {
	svcs, err := knative.Decode(strings.NewReader(`{"apiVersion":"serving.knative.dev/v1","kind":"Service",
		"metadata":{"name":"hello"},"spec":{"template":{"spec":{"containers":[{"image":"example.com/hello"}]}}}}`))
	require.NoError(t, err)
	s := svcs[0]
	s.SetDefaults()
	c := s.Spec.Template.Spec.Containers[0]
	assert.Equal(t, "user-container", c.Name)
	require.NotNil(t, c.ReadinessProbe)
	assert.NotNil(t, c.ReadinessProbe.TCPSocket)
	assert.Equal(t, int32(1), c.ReadinessProbe.SuccessThreshold)
	assert.Equal(t, int64(300), *s.Spec.Template.Spec.TimeoutSeconds)
	assert.Equal(t, int64(0), *s.Spec.Template.Spec.ContainerConcurrency)
	require.Len(t, s.Spec.Traffic, 1)
	assert.True(t, *s.Spec.Traffic[0].LatestRevision)
	assert.Equal(t, int64(100), *s.Spec.Traffic[0].Percent)

	cfg, err := knative.ToConfig(s)
	require.NoError(t, err)
	assert.Equal(t, 0, cfg.Template.Port, "no port means the default, 8080")
	assert.Equal(t, 8080, cfg.Template.WithDefaults().Port)
}

func TestDecodeMultiDocument(t *testing.T) {
	data := "# two services\n---\n" + strings.Repeat(`apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: NAME}
spec: {template: {spec: {containers: [{command: [./app]}]}}}
---
`, 1)
	data = strings.Replace(data, "NAME", "a", 1) + strings.Replace(data[strings.Index(data, "apiVersion"):], "NAME", "b", 1)
	svcs, err := knative.Decode(strings.NewReader(data))
	require.NoError(t, err)
	require.Len(t, svcs, 2)
	assert.Equal(t, "a", svcs[0].Name)
	assert.Equal(t, "b", svcs[1].Name)

	_, err = knative.Decode(strings.NewReader("# nothing\n---\n"))
	require.ErrorContains(t, err, "no document")
	_, err = knative.Decode(strings.NewReader("- a\n- b\n"))
	require.ErrorContains(t, err, "must be an object")
}

func TestStatusIgnoredOnInput(t *testing.T) {
	svcs, err := knative.Decode(strings.NewReader(`apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: hello, uid: abc, resourceVersion: "7", creationTimestamp: "2026-01-01T00:00:00Z", generation: 3}
spec: {template: {spec: {containers: [{image: example.com/hello}]}}}
status:
  url: http://hello.default.example.com
  latestReadyRevisionName: hello-00003
`))
	require.NoError(t, err, "kubectl get -o yaml output decodes")
	assert.Empty(t, svcs[0].Status.URL)
}

// FuzzDecode: no input makes Decode, SetDefaults, Validate or the
// conversions panic, and whatever converts renders back to a Service
// that converts to the same Config.
func FuzzDecode(f *testing.F) {
	for _, dir := range []string{"testdata/valid", "testdata/invalid"} {
		files, _ := filepath.Glob(dir + "/*.yaml")
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		svcs, err := knative.Decode(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, s := range svcs {
			c, err := knative.ToConfig(s)
			if err != nil {
				continue
			}
			c2, err := knative.ToConfig(knative.FromConfig(c))
			if err != nil {
				t.Fatalf("rendered Config does not convert: %v", err)
			}
			if c2.Template.Hash() != c.Template.Hash() {
				t.Fatalf("round trip changed the template: %+v vs %+v", c.Template, c2.Template)
			}
		}
	})
}

// A container port named h2c (Knative's way to say the app speaks
// HTTP/2 without TLS, as gRPC servers do) becomes the revision's
// Protocol, and back.
func TestPortNameIsTheProtocol(t *testing.T) {
	cs, err := decodeConfig([]byte(`{"apiVersion":"serving.knative.dev/v1","kind":"Service",
		"metadata":{"name":"grpc"},"spec":{"template":{"spec":{"containers":[{"image":"example.com/grpc",
		"ports":[{"name":"h2c","containerPort":9000}]}]}}}}`))
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, "h2c", cs[0].Template.Protocol)
	assert.Equal(t, 9000, cs[0].Template.Port)
	back := knative.FromConfig(cs[0])
	require.Len(t, back.Spec.Template.Spec.Containers[0].Ports, 1)
	assert.Equal(t, "h2c", back.Spec.Template.Spec.Containers[0].Ports[0].Name)
}

func TestNearestField(t *testing.T) {
	for _, tc := range []struct{ manifest, want string }{
		{"spec: {template: {spec: {containers: [{imag: x}]}}}", `did you mean "image"?`},
		{"spec: {traffic: [{precent: 100}]}", `did you mean "percent"?`},
		{"metadata: {annotation: {}}", `did you mean "annotations"?`},
		{"spec: {template: {spec: {zzzzzzzz: 1}}}", ""},
	} {
		_, err := knative.Decode(strings.NewReader("apiVersion: serving.knative.dev/v1\nkind: Service\n" + tc.manifest))
		fes := knative.Errors(err)
		require.Len(t, fes, 1, "%s: %v", tc.manifest, err)
		assert.Equal(t, tc.want, fes[0].Allowed, tc.manifest)
	}
}

// serving.knative.dev/progress-deadline on the template is the
// revision's progress deadline, and back; a bad value names its path.
func TestProgressDeadlineAnnotation(t *testing.T) {
	const manifest = `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"slow"},
		"spec":{"template":{"metadata":{"annotations":{"serving.knative.dev/progress-deadline":%q}},
		"spec":{"containers":[{"image":"example.com/slow"}]}}}}`
	cs, err := decodeConfig(fmt.Appendf(nil, manifest, "42s"))
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Equal(t, 42*time.Second, cs[0].Template.ProgressDeadline)
	assert.Empty(t, cs[0].TemplateAnnotations)
	back := knative.FromConfig(cs[0])
	assert.Equal(t, "42s", back.Spec.Template.Annotations[revision.ProgressDeadlineAnnotation])

	_, err = decodeConfig(fmt.Appendf(nil, manifest, "soon"))
	fes := knative.Errors(err)
	require.NotEmpty(t, fes, "%v", err)
	assert.Contains(t, fes[0].Paths()[0], "spec.template.metadata.annotations[serving.knative.dev/progress-deadline]")
}

// zeroscale.dev/socket-activation on the template is the revision's
// Spec.SocketActivation, and back; a bad value names its path.
func TestSocketActivationAnnotation(t *testing.T) {
	const manifest = `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"fast"},
		"spec":{"template":{"metadata":{"annotations":{"zeroscale.dev/socket-activation":%q}},
		"spec":{"containers":[{"image":"example.com/fast"}]}}}}`
	cs, err := decodeConfig(fmt.Appendf(nil, manifest, "true"))
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.True(t, cs[0].Template.SocketActivation)
	assert.Empty(t, cs[0].TemplateAnnotations)
	back := knative.FromConfig(cs[0])
	assert.Equal(t, "true", back.Spec.Template.Annotations[revision.SocketActivationAnnotation])

	_, err = decodeConfig(fmt.Appendf(nil, manifest, "on"))
	fes := knative.Errors(err)
	require.NotEmpty(t, fes, "%v", err)
	assert.Contains(t, fes[0].Paths()[0], "spec.template.metadata.annotations[zeroscale.dev/socket-activation]")
}

func TestFloorScheduleAnnotation(t *testing.T) {
	const manifest = `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"office"},
		"spec":{"template":{"metadata":{"annotations":{"zeroscale.dev/scale-floor-schedule":%q,
		"zeroscale.dev/scale-floor-lead-time":"5m"}},
		"spec":{"containers":[{"image":"example.com/office"}]}}}}`
	cs, err := decodeConfig(fmt.Appendf(nil, manifest, "Mon-Fri 08:00-18:00 Europe/Berlin = 2"))
	require.NoError(t, err)
	require.Len(t, cs, 1)
	require.NotNil(t, cs[0].Template.Scaling.FloorSchedule)
	assert.Equal(t, "Mon-Fri 08:00-18:00 Europe/Berlin = 2", cs[0].Template.Scaling.FloorSchedule.String())
	assert.Empty(t, cs[0].TemplateAnnotations)
	back := knative.FromConfig(cs[0])
	assert.Equal(t, "Mon-Fri 08:00-18:00 Europe/Berlin = 2", back.Spec.Template.Annotations[revision.FloorScheduleAnnotation])
	assert.Equal(t, "5m0s", back.Spec.Template.Annotations[revision.FloorLeadTimeAnnotation])

	_, err = decodeConfig(fmt.Appendf(nil, manifest, "Mon-Fri 08:00-18:00 Europe/Berlin"))
	fes := knative.Errors(err)
	require.NotEmpty(t, fes, "%v", err)
	assert.Contains(t, fes[0].Paths()[0], "spec.template.metadata.annotations[zeroscale.dev/scale-floor-schedule]")
	assert.Contains(t, err.Error(), `no "= N" floor`)
}

func TestReservedAnnotations(t *testing.T) {
	const manifest = `{"apiVersion":"serving.knative.dev/v1","kind":"Service","metadata":{"name":"cheap"},
		"spec":{"template":{"metadata":{"annotations":{"zeroscale.dev/idle-mode":"reserve",
		"zeroscale.dev/reserved-cpu":%q,"zeroscale.dev/reserved-memory":"128Mi","zeroscale.dev/reserved-nice":"15"}},
		"spec":{"containers":[{"image":"example.com/cheap"}]}}}}`
	cs, err := decodeConfig(fmt.Appendf(nil, manifest, "250m"))
	require.NoError(t, err)
	require.Len(t, cs, 1)
	assert.Empty(t, cs[0].TemplateAnnotations, "the reserved profile is scaling, not a plain annotation")
	s := cs[0].Template.Scaling
	assert.Equal(t, revision.IdleModeReserve, s.IdleMode)
	assert.Equal(t, revision.ReservedProfile{CPUMillis: 250, MemoryBytes: 128 << 20, Nice: 15}, s.Reserved(revision.Resources{}))
	back := knative.FromConfig(cs[0])
	assert.Equal(t, "250m", back.Spec.Template.Annotations[revision.ReservedCPUAnnotation])
	assert.Equal(t, "128Mi", back.Spec.Template.Annotations[revision.ReservedMemoryAnnotation])
	assert.Equal(t, "15", back.Spec.Template.Annotations[revision.ReservedNiceAnnotation])

	_, err = decodeConfig(fmt.Appendf(nil, manifest, "1m"))
	fes := knative.Errors(err)
	require.NotEmpty(t, fes, "%v", err)
	assert.Contains(t, fes[0].Paths()[0], "spec.template.metadata.annotations[zeroscale.dev/reserved-cpu]")
	assert.Contains(t, err.Error(), "[10m, 256]")
}
