package revision

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func validSpec() Spec {
	return Spec{
		Image:   "ghcr.io/example/hello:1",
		Command: []string{"/hello"},
		Args:    []string{"-v"},
		Env:     []EnvVar{{Name: "GREETING", Value: "hi"}},
		Scaling: Scaling{MinScale: new(1), Window: new(30 * time.Second)},
	}
}

func TestSpecWithDefaults(t *testing.T) {
	s := Spec{Image: "x"}
	d := s.WithDefaults()
	if d.Port != DefaultPort || d.Timeouts.Request != DefaultRequestTimeout ||
		d.Timeouts.ResponseStart != DefaultRequestTimeout || d.Readiness.Timeout != DefaultProbeTimeout {
		t.Fatalf("defaults not applied: %+v", d)
	}
	if d.Timeouts.Idle != 0 || d.Readiness.Period != 0 || d.ContainerConcurrency != 0 {
		t.Fatalf("zero-means-off fields changed: %+v", d)
	}
	if s.Port != 0 {
		t.Fatal("WithDefaults mutated its receiver")
	}
	set := Spec{Image: "x", Port: 9000, Timeouts: Timeouts{Request: time.Minute, ResponseStart: 10 * time.Second},
		Readiness: Probe{Timeout: 3 * time.Second}}
	if got := set.WithDefaults(); !reflect.DeepEqual(got, set) {
		t.Fatalf("set fields overridden: %+v", got)
	}
	if got := (Spec{Image: "x", Timeouts: Timeouts{Request: time.Minute}}).WithDefaults(); got.Timeouts.ResponseStart != time.Minute {
		t.Fatalf("ResponseStart %v, want the request timeout", got.Timeouts.ResponseStart)
	}
}

func TestSpecValidate(t *testing.T) {
	for name, s := range map[string]Spec{
		"image only":   {Image: "x"},
		"command only": {Command: []string{"/bin/app"}},
		"full":         validSpec(),
		"edges": {Image: "x", Port: 65535, ContainerConcurrency: MaxContainerConcurrency,
			Timeouts:  Timeouts{Request: time.Hour, ResponseStart: time.Hour, Idle: time.Hour},
			Readiness: Probe{HTTPPath: "/healthz", Period: time.Hour, Timeout: time.Hour},
			Resources: Resources{CPURequestMillis: 100, CPULimitMillis: 100, MemoryRequestBytes: 1, MemoryLimitBytes: 0},
			Env:       []EnvVar{{Name: "a.b-c_D9"}, {Name: "_X", Value: ""}}},
	} {
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}

	tests := []rejectCase[Spec]{
		{"Spec.Image", "", func(s *Spec) { s.Image, s.Command = "", nil }},
		{"Spec.Image", "", func(s *Spec) { s.Image, s.Command = "", []string{""} }},
		{"Spec.Image", "a\x00b", func(s *Spec) { s.Image = "a\x00b" }},
		{"Spec.Args[0]", "\x00", func(s *Spec) { s.Args = []string{"\x00"} }},
		{"Spec.Port", "-1", func(s *Spec) { s.Port = -1 }},
		{"Spec.Port", "65536", func(s *Spec) { s.Port = 65536 }},
		{"Spec.Protocol", "h2", func(s *Spec) { s.Protocol = "h2" }},
		{"Spec.ContainerConcurrency", "-1", func(s *Spec) { s.ContainerConcurrency = -1 }},
		{"Spec.ContainerConcurrency", "1001", func(s *Spec) { s.ContainerConcurrency = 1001 }},
		{"Spec.Timeouts.Request", "-1s", func(s *Spec) { s.Timeouts.Request = -time.Second }},
		{"Spec.Timeouts.Request", "1h0m1s", func(s *Spec) { s.Timeouts.Request = time.Hour + time.Second }},
		{"Spec.Timeouts.ResponseStart", "5m0s", func(s *Spec) { s.Timeouts = Timeouts{Request: time.Minute, ResponseStart: 5 * time.Minute} }},
		{"Spec.Timeouts.ResponseStart", "-1s", func(s *Spec) { s.Timeouts.ResponseStart = -time.Second }},
		{"Spec.Timeouts.Idle", "-1s", func(s *Spec) { s.Timeouts.Idle = -time.Second }},
		{"Spec.Env[0].Name", "PORT", func(s *Spec) { s.Env = []EnvVar{{Name: "PORT", Value: "1"}} }},
		{"Spec.Env[0].Name", "K_REVISION", func(s *Spec) { s.Env = []EnvVar{{Name: "K_REVISION"}} }},
		{"Spec.Env[0].Name", "", func(s *Spec) { s.Env = []EnvVar{{Name: ""}} }},
		{"Spec.Env[0].Name", "9LIVES", func(s *Spec) { s.Env = []EnvVar{{Name: "9LIVES"}} }},
		{"Spec.Env[0].Name", "A=B", func(s *Spec) { s.Env = []EnvVar{{Name: "A=B"}} }},
		{"Spec.Env[1].Name", "A", func(s *Spec) { s.Env = []EnvVar{{Name: "A"}, {Name: "A"}} }},
		{"Spec.Env[0].Value", "\x00", func(s *Spec) { s.Env = []EnvVar{{Name: "A", Value: "\x00"}} }},
		{"Spec.Readiness.HTTPPath", "healthz", func(s *Spec) { s.Readiness.HTTPPath = "healthz" }},
		{"Spec.Readiness.Period", "-1s", func(s *Spec) { s.Readiness.Period = -time.Second }},
		{"Spec.Readiness.Timeout", "2h0m0s", func(s *Spec) { s.Readiness.Timeout = 2 * time.Hour }},
		{"Spec.Resources.CPURequestMillis", "-1", func(s *Spec) { s.Resources.CPURequestMillis = -1 }},
		{"Spec.Resources.CPULimitMillis", "100", func(s *Spec) { s.Resources = Resources{CPURequestMillis: 200, CPULimitMillis: 100} }},
		{"Spec.Resources.MemoryLimitBytes", "-5", func(s *Spec) { s.Resources.MemoryLimitBytes = -5 }},
		{"Spec.Resources.MemoryLimitBytes", "1", func(s *Spec) { s.Resources = Resources{MemoryRequestBytes: 2, MemoryLimitBytes: 1} }},
		{MinScaleAnnotation, "-1", func(s *Spec) { s.Scaling.MinScale = new(-1) }},
	}
	testRejects(t, validSpec, func(_ *testing.T, s Spec) error { return s.Validate() }, tests)
}

func TestSpecCloneIsDeep(t *testing.T) {
	orig := validSpec()
	c := orig.clone()
	c.Command[0] = "changed"
	c.Args[0] = "changed"
	c.Env[0].Value = "changed"
	*c.Scaling.MinScale = 99
	*c.Scaling.Window = time.Hour
	if !reflect.DeepEqual(orig, validSpec()) {
		t.Fatalf("mutating a clone changed the original: %+v", orig)
	}
}

func TestSpecHashIgnoresDefaultsAndAliasing(t *testing.T) {
	a := Spec{Image: "x"}
	b := Spec{Image: "x", Port: DefaultPort, Command: []string{}, Timeouts: Timeouts{Request: DefaultRequestTimeout},
		Readiness: Probe{Timeout: DefaultProbeTimeout}}
	if a.Hash() != b.Hash() {
		t.Fatal("defaulted and explicit specs hash differently")
	}
	if h := a.Hash(); h != (Spec{Image: "x"}).Hash() || len(h) != 64 {
		t.Fatalf("unstable or malformed hash %q", h)
	}
	// Field boundaries are part of the encoding.
	if (Spec{Command: []string{"ab", "c"}}).Hash() == (Spec{Command: []string{"a", "bc"}}).Hash() {
		t.Fatal("Command [ab c] and [a bc] collide")
	}
	if (Spec{Command: []string{"a"}}).Hash() == (Spec{Args: []string{"a"}}).Hash() {
		t.Fatal("Command and Args collide")
	}
}

// TestSpecHashGolden pins the encoding: hashes must stay comparable
// across versions. Changing it re-stamps every revision of every host.
func TestSpecHashGolden(t *testing.T) {
	const want = "8cbe3d6e57eb20bb529e066586aa8805ec9f3ccf9760e7413bc930bad023901e"
	s := Spec{
		Image: "ghcr.io/example/hello:1", Command: []string{"/hello"}, Args: []string{"-v"},
		Env:     []EnvVar{{Name: "GREETING", Value: "hi"}},
		Scaling: Scaling{MinScale: new(1), Window: new(30 * time.Second)},
	}
	if got := s.Hash(); got != want {
		t.Fatalf("Hash() = %s, want %s", got, want)
	}
}

// TestSpecHashCoversEveryField sets each leaf field of Spec in turn, by
// reflection, and requires the hash to change: a field added to Spec but
// not to Hash fails here.
func TestSpecHashCoversEveryField(t *testing.T) {
	base := Spec{Image: "x"}
	baseHash := base.Hash()
	var visit func(path string, v reflect.Value)
	n := 0
	visit = func(path string, v reflect.Value) {
		if v.Kind() == reflect.Struct {
			for i := range v.NumField() {
				visit(path+"."+v.Type().Field(i).Name, v.Field(i))
			}
			return
		}
		n++
		s := base.clone()
		target := reflect.ValueOf(&s).Elem().FieldByIndex(fieldIndex(t, path))
		setNonDefault(t, path, target)
		if s.Hash() == baseHash {
			t.Errorf("setting %s does not change the hash", path)
		}
	}
	visit("Spec", reflect.ValueOf(base))
	if n < 30 {
		t.Fatalf("visited only %d fields", n)
	}
}

func fieldIndex(t *testing.T, path string) []int {
	typ := reflect.TypeFor[Spec]()
	var idx []int
	for _, name := range strings.Split(path, ".")[1:] {
		f, ok := typ.FieldByName(name)
		if !ok {
			t.Fatalf("no field %s", path)
		}
		idx = append(idx, f.Index...)
		typ = f.Type
	}
	return idx
}

func setNonDefault(t *testing.T, path string, v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString("/other")
	case reflect.Int, reflect.Int64:
		v.SetInt(7)
	case reflect.Slice:
		elem := reflect.New(v.Type().Elem()).Elem()
		if elem.Kind() == reflect.Struct {
			elem.Field(0).SetString("N")
		}
		v.Set(reflect.Append(v, elem))
	case reflect.Pointer:
		if v.Type().Elem() == reflect.TypeFor[Schedule]() {
			v.Set(reflect.ValueOf(new(mustSchedule("Sat 10:00-11:00 UTC = 1"))))
			return
		}
		p := reflect.New(v.Type().Elem())
		setNonDefault(t, path, p.Elem())
		v.Set(p)
	case reflect.Float64:
		v.SetFloat(7)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	default:
		t.Fatalf("%s: unhandled kind %s", path, v.Kind())
	}
}
