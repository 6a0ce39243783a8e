package chart_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/testenv"
)

// TestChartInstallIntoAPIServer installs the chart into a real kube-apiserver (envtest: no
// controllers, so no pods run): every object passes server-side validation, the CRDs are
// established, the pods pass the restricted PodSecurity admission, and `helm upgrade` keeps
// the PVC and the generated SECRET_KEY.
func TestChartInstallIntoAPIServer(t *testing.T) {
	h := helm(t)
	env, _ := testenv.ControlPlane(t)
	kubectl := filepath.Join(env.BinaryAssetsDirectory, "kubectl")
	kubeconfig := testenv.AdminKubeconfig(t, env)
	kenv := []string{"KUBECONFIG=" + kubeconfig, "HELM_CACHE_HOME=" + t.TempDir(), "HELM_CONFIG_HOME=" + t.TempDir(), "HELM_DATA_HOME=" + t.TempDir()}
	must := func(name string, args ...string) string {
		t.Helper()
		out, err := run(t, kenv, name, args...)
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
		}
		return out
	}
	restricted := func(ns string) {
		must(kubectl, "create", "namespace", ns)
		must(kubectl, "label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted")
	}

	// SQLite topology, with every optional object whose API exists in a bare API server.
	restricted("sqlite")
	sqliteSets := []string{"--set", "ingress.enabled=true", "--set", "webhook.enabled=true", "--set", "config.blacklist_after_attempts=5"}
	out := must(h, append([]string{"install", "one", chartDir, "-n", "sqlite"}, sqliteSets...)...)
	if strings.Contains(out, "violate PodSecurity") {
		t.Errorf("the API server warns about Pod Security:\n%s", out)
	}
	must(kubectl, "wait", "--for=condition=Established", "--timeout=30s", "crd/comfyusers.auth.mss-login.dev", "crd/lockouts.auth.mss-login.dev", "crd/s3mounts.auth.mss-login.dev")
	checkPodsAdmitted(t, must, kubectl, "sqlite")
	key := must(kubectl, "-n", "sqlite", "get", "secret", "one-mss-login-secret-key", "-o", "jsonpath={.data.SECRET_KEY}")
	pvc := must(kubectl, "-n", "sqlite", "get", "pvc", "one-mss-login-data", "-o", "jsonpath={.metadata.uid}")
	if len(key) < 32 || pvc == "" {
		t.Fatalf("generated secret %q, PVC uid %q", key, pvc)
	}

	checkManagerRBAC(t, kenv, kubectl, "sqlite", "one-mss-login")

	// Upgrade with other values: the data-bearing objects and the key stay as they were.
	must(h, append([]string{"upgrade", "one", chartDir, "-n", "sqlite", "--set", "upstream.url=http://comfy.other:8188"}, sqliteSets...)...)
	if k := must(kubectl, "-n", "sqlite", "get", "secret", "one-mss-login-secret-key", "-o", "jsonpath={.data.SECRET_KEY}"); k != key {
		t.Error("helm upgrade regenerated SECRET_KEY")
	}
	if u := must(kubectl, "-n", "sqlite", "get", "pvc", "one-mss-login-data", "-o", "jsonpath={.metadata.uid}"); u != pvc {
		t.Error("helm upgrade replaced the PVC")
	}
	if cm := must(kubectl, "-n", "sqlite", "get", "configmap", "one-mss-login-config", "-o", "jsonpath={.data.config\\.json}"); !strings.Contains(cm, "comfy.other") {
		t.Errorf("the upgrade did not reach config.json: %s", cm)
	}
	// Uninstall keeps the CRDs, the key and the data (helm.sh/resource-policy: keep).
	must(h, "uninstall", "one", "-n", "sqlite")
	must(kubectl, "-n", "sqlite", "get", "secret/one-mss-login-secret-key", "pvc/one-mss-login-data")
	must(kubectl, "get", "crd/comfyusers.auth.mss-login.dev")

	// PostgreSQL topology in another namespace; the CRDs stay with the kept ones.
	restricted("ha")
	out = must(h, "install", "two", chartDir, "-n", "ha", "--set", "crds.install=false",
		"--set", "database.backend=postgresql", "--set", "database.host=pg", "--set", "database.passwordSecret.name=pg",
		"--set", "authserver.replicas=3")
	if strings.Contains(out, "violate PodSecurity") {
		t.Errorf("the API server warns about Pod Security:\n%s", out)
	}
	checkPodsAdmitted(t, must, kubectl, "ha")
	must(kubectl, "-n", "ha", "get", "deployment/two-mss-login-manager", "deployment/two-mss-login-authserver", "pdb/two-mss-login-authserver")
}

// checkPodsAdmitted creates (dry run, on the server) a Pod from every Deployment's template in
// ns: the restricted PodSecurity admission rejects a pod that does not meet the standard.
func checkPodsAdmitted(t *testing.T, must func(string, ...string) string, kubectl, ns string) {
	t.Helper()
	names := strings.Fields(must(kubectl, "-n", ns, "get", "deployments", "-o", "jsonpath={.items[*].metadata.name}"))
	if len(names) == 0 {
		t.Fatalf("no Deployments in %s", ns)
	}
	for _, d := range names {
		spec := must(kubectl, "-n", ns, "get", "deployment", d, "-o", "jsonpath={.spec.template.spec}")
		pod := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + d + `-check"},"spec":` + spec + `}`
		f := filepath.Join(t.TempDir(), "pod.json")
		if err := os.WriteFile(f, []byte(pod), 0o600); err != nil {
			t.Fatal(err)
		}
		must(kubectl, "-n", ns, "create", "--dry-run=server", "-f", f)
	}
}

// checkManagerRBAC asks the API server (kubectl auth can-i, impersonating the manager's
// service account) for what the manager does, and for what it must not be able to do: the
// other tests run with admin credentials, so a missing or too wide grant shows only here.
func checkManagerRBAC(t *testing.T, kenv []string, kubectl, ns, release string) {
	t.Helper()
	sa := "system:serviceaccount:" + ns + ":" + release + "-manager"
	for _, c := range []struct {
		want bool
		args []string
	}{
		{true, []string{"list", "comfyusers.auth.mss-login.dev", "-A"}},
		{true, []string{"update", "comfyusers.auth.mss-login.dev", "--subresource=status", "-A"}},
		{true, []string{"create", "lockouts.auth.mss-login.dev", "-n", ns}},
		{true, []string{"update", "s3mounts.auth.mss-login.dev", "--subresource=status", "-A"}},
		{false, []string{"update", "s3mounts.auth.mss-login.dev", "-A"}},
		{true, []string{"list", "pods", "-A"}},
		{true, []string{"get", "secrets", "-A"}},
		{true, []string{"create", "events.events.k8s.io", "-A"}},
		{true, []string{"update", "leases.coordination.k8s.io", "-n", ns}},
		{true, []string{"get", "mutatingwebhookconfigurations/" + release + "-s3mount"}},
		{true, []string{"patch", "mutatingwebhookconfigurations/" + release + "-s3mount"}},
		{true, []string{"create", "secrets", "-n", ns}},
		{true, []string{"update", "secrets/" + release + "-webhook-cert", "-n", ns}},
		// Not granted:
		{false, []string{"patch", "mutatingwebhookconfigurations/someone-elses"}},
		{false, []string{"list", "mutatingwebhookconfigurations"}},
		{false, []string{"create", "secrets", "-n", "default"}},
		{false, []string{"update", "secrets/another", "-n", ns}},
		{false, []string{"delete", "secrets", "-n", ns}},
		{false, []string{"create", "comfyusers.auth.mss-login.dev", "-A"}},
	} {
		out, _ := run(t, kenv, kubectl, append([]string{"auth", "can-i", "--as", sa}, c.args...)...)
		if got := strings.TrimSpace(out) == "yes"; got != c.want {
			t.Errorf("manager can %s: %q, want %v", strings.Join(c.args, " "), strings.TrimSpace(out), c.want)
		}
	}
}
