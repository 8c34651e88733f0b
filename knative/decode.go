package knative

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"

	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// MaxManifestBytes bounds what Decode reads: a manifest is a few
// kilobytes; anything near this is a mistake or an attack.
const MaxManifestBytes = 4 << 20

// Decode reads every Service in r: YAML, one or more documents separated
// by "---" lines, or JSON. Empty documents are skipped.
//
// Decoding is strict, as the Kubernetes API server's strict field
// validation: an unknown field, a field spelled with the wrong case or a
// field given twice is a *revision.FieldError naming its full path
// ("unknown field: spec.template.spec.containerConcurency"), and a
// document that is not a serving.knative.dev/v1 Service is refused. Every
// problem of every document is reported, each prefixed with its
// document's number when there are several. The Services are returned as
// written: call SetDefaults, then Validate (or Convert, which does both).
func Decode(r io.Reader) ([]*Service, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("knative: read manifest: %w", err)
	}
	if len(data) > MaxManifestBytes {
		return nil, fmt.Errorf("knative: manifest larger than %d bytes", MaxManifestBytes)
	}
	yr := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := yr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("knative: split documents: %w", err)
		}
		if !isEmptyDocument(doc) {
			docs = append(docs, doc)
		}
	}
	if len(docs) == 0 {
		return nil, errors.New("knative: the manifest holds no document")
	}
	var out []*Service
	var errs []error
	for i, doc := range docs {
		svc, err := decodeOne(doc)
		if err != nil {
			if len(docs) > 1 {
				err = fmt.Errorf("document %d: %w", i+1, err)
			}
			errs = append(errs, err)
			continue
		}
		out = append(out, svc)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// isEmptyDocument reports whether doc holds only blanks and comments.
func isEmptyDocument(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") && line != "---" {
			return false
		}
	}
	return true
}

func decodeOne(doc []byte) (*Service, error) {
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("knative: %w", err)
	}
	if bytes.Equal(bytes.TrimSpace(j), []byte("null")) {
		return nil, errors.New("knative: empty document")
	}
	if !bytes.HasPrefix(bytes.TrimSpace(j), []byte("{")) {
		return nil, errors.New("knative: a document must be an object (a serving.knative.dev/v1 Service)")
	}
	svc := new(Service)
	strict, err := kjson.UnmarshalStrict(j, svc)
	if err != nil {
		return nil, fmt.Errorf("knative: %w", err)
	}
	var errs fieldErrors
	for _, e := range strict {
		msg, path := "unknown field", ""
		if fe, ok := e.(interface{ FieldPath() string }); ok {
			path = fe.FieldPath()
		}
		details := ""
		if strings.HasPrefix(e.Error(), "duplicate field") {
			msg = "duplicate field"
		} else if near := nearestField(reflect.TypeFor[Service](), path); near != "" {
			details = fmt.Sprintf("did you mean %q?", near)
		}
		errs.add(msg, details, path)
	}
	if svc.APIVersion != APIVersion || svc.Kind != KindService {
		errs.add(fmt.Sprintf("invalid value: apiVersion %q, kind %q", svc.APIVersion, svc.Kind),
			fmt.Sprintf("want apiVersion %q, kind %q", APIVersion, KindService), "apiVersion", "kind")
	}
	if err := errs.err(); err != nil {
		return nil, err
	}
	svc.Status = ServiceStatus{} // status is the host's to say
	return svc, nil
}

// nearestField returns the known field closest to the last element of
// an unknown field's path (same spelling but for case, or at most two
// edits away), "" if none is.
func nearestField(t reflect.Type, path string) string {
	parts := strings.Split(path, ".")
	for _, p := range parts[:len(parts)-1] {
		name, _, _ := strings.Cut(p, "[")
		f, ok := jsonFields(t)[name]
		if !ok {
			return ""
		}
		t = elem(f)
		if strings.Contains(p, "[") && (t.Kind() == reflect.Slice || t.Kind() == reflect.Map) {
			t = elem(t.Elem())
		}
	}
	if t.Kind() != reflect.Struct {
		return ""
	}
	unknown := parts[len(parts)-1]
	best, bestDist := "", 3
	for name := range jsonFields(t) {
		d := editDistance(strings.ToLower(unknown), strings.ToLower(name))
		if d < bestDist || (d == bestDist && name < best) {
			best, bestDist = name, d
		}
	}
	return best
}

// elem strips pointers.
func elem(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// jsonFields maps the JSON names of struct t's fields (inline structs
// flattened) to their types.
func jsonFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	if t.Kind() != reflect.Struct {
		return out
	}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case !f.IsExported() || name == "-":
		case name == "" && f.Anonymous && strings.Contains(opts, "inline"):
			for k, v := range jsonFields(elem(f.Type)) {
				out[k] = v
			}
		case name != "":
			out[name] = f.Type
		}
	}
	return out
}

// editDistance is the Levenshtein distance of a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
