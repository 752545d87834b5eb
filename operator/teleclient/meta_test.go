package teleclient

import (
	"encoding/json"
	"reflect"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"

	"github.com/teleop/teleop/operator/api/v1alpha1"
)

// wireTeleApp is a TeleApp as the API server sends it: an unstructured
// object, so its keys come sorted, apiVersion and kind first.
func wireTeleApp(t testing.TB) []byte {
	t.Helper()
	replicas := int32(2)
	app := v1alpha1.TeleApp{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.SchemeGroupVersion.String(), Kind: "TeleApp"},
		ObjectMeta: metav1.ObjectMeta{
			Name: "web", Namespace: "team-a", UID: "6c1f0c1e-3c4b-4c55-9d7a-7f0e2b1d9a10", ResourceVersion: "4711", Generation: 3,
			Annotations: map[string]string{"teleop.io/announced": `{"phase":"Ready","replicas":2}`},
			Finalizers:  []string{"teleop.io/announce"},
			ManagedFields: []metav1.ManagedFieldsEntry{{
				Manager: "teleop-bot", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "teleop.io/v1alpha1",
				FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:image":{},"f:replicas":{}}}`)},
			}},
		},
		Spec:   v1alpha1.TeleAppSpec{Image: "nginx:1.27", Replicas: &replicas},
		Status: v1alpha1.TeleAppStatus{Phase: v1alpha1.PhaseReady, Message: `2/2 replicas ready, kind of "quoted" {braces}`},
	}
	typed, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	var unstructured map[string]any
	if err := json.Unmarshal(typed, &unstructured); err != nil {
		t.Fatal(err)
	}
	wire, err := json.Marshal(unstructured)
	if err != nil {
		t.Fatal(err)
	}
	return wire
}

// documents are what the default and MetaFactory must agree on.
func documents(t testing.TB) map[string][]byte {
	app := wireTeleApp(t)
	return map[string][]byte{
		"object":                  app,
		"watch event":             []byte(`{"type":"MODIFIED","object":` + string(app) + `}`),
		"list":                    []byte(`{"apiVersion":"teleop.io/v1alpha1","items":[` + string(app) + `],"kind":"TeleAppList","metadata":{"resourceVersion":"9"}}`),
		"status, kind first":      []byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","code":409}`),
		"core group":              []byte(`{"apiVersion":"v1","kind":"Pod"}`),
		"empty object":            []byte(`{}`),
		"nested kinds only":       []byte(`{"metadata":{"kind":"X","apiVersion":"y/v1"},"items":[{"kind":"Z"}]}`),
		"white space":             []byte(" {\n \"kind\" : \"TeleApp\" ,\t\"apiVersion\":\"teleop.io/v1alpha1\" , \"n\" : -1.5e3 , \"b\":true,\"z\":null }\n"),
		"duplicate, last wins":    []byte(`{"kind":"A","apiVersion":"g/v1","kind":"B"}`),
		"escapes in skipped":      []byte(`{"apiVersion":"g/v1","note":"a \"}\" and a \\","kind":"K"}`),
		"key in another case":     []byte(`{"apiVersion":"g/v1","Kind":"K"}`),
		"escaped key":             []byte(`{"apiVersion":"g/v1","\u006bind":"K"}`),
		"escaped value":           []byte(`{"apiVersion":"g\/v1","kind":"K"}`),
		"kind not a string":       []byte(`{"apiVersion":"g/v1","kind":7}`),
		"kind null":               []byte(`{"apiVersion":"g/v1","kind":null}`),
		"bad group version":       []byte(`{"apiVersion":"a/b/c","kind":"K"}`),
		"not an object":           []byte(`["apiVersion","g/v1"]`),
		"empty":                   []byte(``),
		"truncated":               []byte(`{"apiVersion":"g/v1","kind":"K"`),
		"trailing data":           []byte(`{"apiVersion":"g/v1","kind":"K"} {}`),
		"unterminated skip":       []byte(`{"apiVersion":"g/v1","spec":{"a":"}`),
		"invalid UTF-8 in kind":   []byte("{\"apiVersion\":\"g/v1\",\"kind\":\"K\xff\"}"),
		"kelvin sign key":         []byte("{\"apiVersion\":\"g/v1\",\"\u212aind\":\"K\"}"),
		"missing colon":           []byte(`{"apiVersion" "g/v1"}`),
		"missing comma":           []byte(`{"apiVersion":"g/v1" "kind":"K"}`),
		"deeply nested skipped":   []byte(`{"a":[[[{"b":[{"c":"]}"}]}]]],"kind":"K","apiVersion":"g/v1"}`),
		"literal before the kind": []byte(`{"replicas":3,"kind":"K","apiVersion":"g/v1"}`),
	}
}

func TestInterpretAgreesWithTheDefault(t *testing.T) {
	for name, doc := range documents(t) {
		t.Run(name, func(t *testing.T) {
			assertAgrees(t, doc)
		})
	}
}

// FuzzInterpret checks MetaFactory against the default on any input.
func FuzzInterpret(f *testing.F) {
	for _, doc := range documents(f) {
		f.Add(doc)
	}
	f.Fuzz(assertAgrees)
}

// assertAgrees checks that on a valid JSON document MetaFactory gives the
// default's answer, or fails as the default does. Invalid JSON may pass:
// the decoder after Interpret rejects it.
func assertAgrees(t *testing.T, doc []byte) {
	t.Helper()
	if !json.Valid(doc) {
		return
	}
	want, wantErr := kjson.DefaultMetaFactory.Interpret(doc)
	got, gotErr := MetaFactory{}.Interpret(doc)
	if (gotErr != nil) != (wantErr != nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("Interpret(%q) = %v, %v; the default says %v, %v", doc, got, gotErr, want, wantErr)
	}
}

func BenchmarkInterpret(b *testing.B) {
	app := wireTeleApp(b)
	event := []byte(`{"type":"MODIFIED","object":` + string(app) + `}`)
	for _, f := range []struct {
		name    string
		factory kjson.MetaFactory
	}{{"default", kjson.DefaultMetaFactory}, {"MetaFactory", MetaFactory{}}} {
		b.Run(f.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := f.factory.Interpret(event); err != nil {
					b.Fatal(err)
				}
				if _, err := f.factory.Interpret(app); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
