package v1alpha1_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"sigs.k8s.io/yaml"

	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/testenv"
)

const repoRoot = "../.."

// controllerGen returns bin/controller-gen, or skips (fails under CI) without it.
func controllerGen(t *testing.T) string {
	t.Helper()
	bin, _ := filepath.Abs(filepath.Join(repoRoot, "bin", "controller-gen"))
	if _, err := os.Stat(bin); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s is missing: `make tools` installs it", bin)
		}
		t.Skipf("%s is missing: run `make tools`", bin)
	}
	return bin
}

// controllerGenPaths are the Makefile's CONTROLLER_GEN_PATHS: the packages whose markers make
// the CRDs and the RBAC role.
func controllerGenPaths(t *testing.T) []string {
	t.Helper()
	mk, err := os.ReadFile(filepath.Join(repoRoot, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(mk)) {
		if v, ok := strings.CutPrefix(line, "CONTROLLER_GEN_PATHS :="); ok {
			return strings.Fields(v)
		}
	}
	t.Fatal("the Makefile sets no CONTROLLER_GEN_PATHS")
	return nil
}

// TestGeneratedFilesUpToDate regenerates the CRDs, the RBAC role and the deepcopy functions
// into a temporary directory and fails when the checked-in files differ: run
// `make manifests generate` and commit the result.
func TestGeneratedFilesUpToDate(t *testing.T) {
	gen := controllerGen(t)
	tmp := t.TempDir()
	run := func(args ...string) []byte {
		cmd := exec.Command(gen, args...)
		cmd.Dir = repoRoot
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("controller-gen %v: %v\n%s", args, err, errb.String())
		}
		return out.Bytes()
	}
	args := append([]string{"crd", "rbac:roleName=mss-login-manager"}, controllerGenPaths(t)...)
	run(append(args, "output:crd:artifacts:config="+filepath.Join(tmp, "crd"), "output:rbac:artifacts:config="+filepath.Join(tmp, "rbac"))...)
	deepcopy := run("object", "paths=./api/...", "output:object:stdout")

	compare := func(fresh []byte, checkedIn string) {
		old, err := os.ReadFile(filepath.Join(repoRoot, checkedIn))
		if err != nil || !bytes.Equal(old, fresh) {
			t.Errorf("%s is stale (or missing: %v): run `make manifests generate`", checkedIn, err)
		}
	}
	compare(deepcopy, "api/v1alpha1/zz_generated.deepcopy.go")
	entries, err := os.ReadDir(filepath.Join(tmp, "crd"))
	if err != nil {
		t.Fatal(err)
	}
	checked, _ := filepath.Glob(filepath.Join(repoRoot, "config", "crd", "bases", "*.yaml"))
	if len(checked) != len(entries) {
		t.Errorf("config/crd/bases has %d files, controller-gen makes %d: run `make manifests`", len(checked), len(entries))
	}
	for _, e := range entries {
		fresh, _ := os.ReadFile(filepath.Join(tmp, "crd", e.Name()))
		compare(fresh, filepath.Join("config", "crd", "bases", e.Name()))
	}
	fresh, _ := os.ReadFile(filepath.Join(tmp, "rbac", "role.yaml"))
	compare(fresh, "config/rbac/role.yaml")
}

// TestPermissionRuleMatchesRoles: the CEL rule that limits ComfyRole permission names lists
// exactly internal/roles.Permissions, so the API server and the database agree.
func TestPermissionRuleMatchesRoles(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "crd", "bases", "auth.mss-login.dev_comfyroles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	perms := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["permissions"]
	if len(perms.XValidations) != 1+len(roles.Unsupported) {
		t.Fatalf("permissions has %d CEL rules, want 1 + one per unsupported permission", len(perms.XValidations))
	}
	// Each unsupported permission has a rule refusing it, whose message starts with its name.
	for flag := range roles.Unsupported {
		found := false
		for _, v := range perms.XValidations[1:] {
			found = found || strings.Contains(v.Rule, "'"+flag+"'") && strings.HasPrefix(v.Message, flag+": not supported")
		}
		if !found {
			t.Errorf("no CEL rule refuses the unsupported permission %s", flag)
		}
	}
	quoted := make([]string, len(roles.Permissions))
	for i, p := range roles.Permissions {
		quoted[i] = "'" + p + "'"
	}
	want := "self.all(k, k in [" + strings.Join(quoted, ", ") + "])"
	if got := perms.XValidations[0].Rule; got != want {
		t.Fatalf("the rule in api/v1alpha1/comfyrole_types.go is out of date with internal/roles:\n got  %s\n want %s", got, want)
	}
	if msg := perms.XValidations[0].Message; !strings.Contains(msg, strings.Join(roles.Permissions, ", ")) {
		t.Fatalf("the rule's message does not list the known permissions: %s", msg)
	}
}

// The folders a ModelGrant may name are internal/modelgrant's, so that the API server and the
// auth server cannot disagree.
func TestModelFoldersMatch(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(repoRoot, "config", "crd", "bases", "auth.mss-login.dev_comfyroles.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	if err := yaml.Unmarshal(raw, &crd); err != nil {
		t.Fatal(err)
	}
	folder := crd.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["models"].Items.Schema.Properties["folder"]
	var got []string
	for _, e := range folder.Enum {
		got = append(got, strings.Trim(string(e.Raw), `"`))
	}
	want := append([]string{}, modelgrant.Folders...)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("the folder enum in api/v1alpha1/common_types.go is out of date with internal/modelgrant:\n got  %v\n want %v", got, want)
	}
}
