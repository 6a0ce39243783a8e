// Package chart_test tests the Helm chart (charts/mss-login): its generated templates are
// up to date with config/, it lints and renders every topology and option, refuses bad values
// naming them, wires the webhook and its certificates, and installs into a real kube-apiserver.
package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"

	"github.com/mss-login/mss-login/internal/testenv"
)

// root is the repository root (this package is test/chart).
var root = func() string { p, _ := filepath.Abs("../.."); return p }()

var chartDir = filepath.Join(root, "charts/mss-login")

var decoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(apiextensionsv1.AddToScheme(s))
	return serializer.NewCodecFactory(s).UniversalDeserializer()
}()

// helm returns bin/helm (built by hack/tools.sh). Without it the test is skipped, or fails
// under `make test` / CI, like every other real tool.
func helm(t testing.TB) string {
	t.Helper()
	p := filepath.Join(root, "bin/helm")
	if _, err := os.Stat(p); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s is missing: hack/tools.sh helm builds it (make test does)", p)
		}
		t.Skipf("%s is missing: run hack/tools.sh helm or make test", p)
	}
	return p
}

// run runs a command with this process's environment plus env.
func run(t testing.TB, env []string, name string, args ...string) (string, error) {
	t.Helper()
	return testenv.Run(append(os.Environ(), env...), name, args...)
}

// rendered is the output of helm template, decoded.
type rendered struct {
	raw  string
	objs []runtime.Object
}

// render runs helm template with --set pairs and decodes every document: built-in kinds and
// CRDs typed, the rest (HTTPRoute, ServiceMonitor) unstructured.
func render(t testing.TB, sets ...string) *rendered {
	t.Helper()
	out, err := renderErr(t, sets...)
	if err != nil {
		t.Fatalf("helm template %v: %v", sets, err)
	}
	return out
}

func renderErr(t testing.TB, sets ...string) (*rendered, error) {
	t.Helper()
	args := []string{"template", "rel", chartDir, "--namespace", "comfy"}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	out, err := run(t, nil, helm(t), args...)
	if err != nil {
		return nil, err
	}
	r := &rendered{raw: out}
	for _, doc := range strings.Split(out, "\n---") {
		if strings.TrimSpace(strings.Trim(doc, "-\n")) == "" {
			continue
		}
		obj, _, err := decoder.Decode([]byte(doc), nil, nil)
		if err != nil {
			u := &unstructured.Unstructured{}
			if jerr := yaml.Unmarshal([]byte(doc), &u.Object); jerr != nil {
				t.Fatalf("rendered document is not YAML: %v\n%s", jerr, doc)
			}
			if u.GetKind() == "" {
				continue // a comment-only document
			}
			obj = u
		}
		r.objs = append(r.objs, obj)
	}
	return r, nil
}

// all returns the rendered objects of type T.
func all[T runtime.Object](r *rendered) []T {
	var out []T
	for _, o := range r.objs {
		if v, ok := o.(T); ok {
			out = append(out, v)
		}
	}
	return out
}

// kinds counts rendered objects by kind.
func (r *rendered) kinds() map[string]int {
	m := map[string]int{}
	for _, o := range r.objs {
		m[o.GetObjectKind().GroupVersionKind().Kind]++
	}
	return m
}
