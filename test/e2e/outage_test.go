package e2e_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// managerThroughOutage: a manager started while PostgreSQL does not answer stays up, says why
// it is not ready on /readyz, and migrates and reconciles once the database is back — it does
// not exit and crash-loop through database maintenance.
func managerThroughOutage(t *testing.T, k *kube, bin string) {
	ns := "e2e-outage"
	k.must("create", "namespace", ns)
	dir := t.TempDir()
	db, link := testenv.ThroughLink(t, testenv.Database(t, store.PostgreSQL))
	link.Cut()
	raw, _ := json.Marshal(map[string]any{"users_db": map[string]any{"postgres_sslmode": "disable"},
		"auto_update": map[string]any{"enabled": false}})
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	probes := freeAddr(t)
	env := append(processEnv(dir, db), "KUBECONFIG="+k.kubeconfig())
	mgr := start(t, "manager", env, bin, "manager", "--namespace", ns, "--metrics-bind-address", "0",
		"--health-probe-bind-address", probes, "--resync-period", "1m")
	readyz := func() (int, string) {
		res, err := http.Get("http://" + probes + "/readyz?verbose")
		if err != nil {
			return 0, err.Error()
		}
		defer res.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		n, _ := res.Body.Read(buf)
		b.Write(buf[:n])
		return res.StatusCode, b.String()
	}
	eventually(t, 30*time.Second, "the manager answers /readyz, not ready, naming the database check", func() string {
		if mgr.exited() {
			t.Fatal("the manager exited with the database down")
		}
		// controller-runtime names the failing check and keeps its reason for the log.
		if code, body := readyz(); code == 200 || !strings.Contains(body, "[-]database failed") {
			return fmt.Sprintf("/readyz: %d %s", code, body)
		}
		return ""
	})
	k.apply(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: olga-password, namespace: %[1]s}
stringData: {password: %[2]q}
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyUser
metadata: {name: olga, namespace: %[1]s}
spec:
  username: olga
  passwordSecretRef: {name: olga-password}
`, ns, alicePassword))
	eventually(t, 30*time.Second, "the ComfyUser reports the database", func() string {
		out := k.must("-n", ns, "get", "comfyuser", "olga", "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].reason}`)
		if out != "DatabaseUnavailable" {
			return "Ready reason: " + out
		}
		return ""
	})
	time.Sleep(2 * time.Second) // a few retries against the cut link
	if mgr.exited() {
		t.Fatal("the manager exited during the outage")
	}
	if out := mgr.log.String(); !strings.Contains(out, "users database not reachable at start; retrying") {
		t.Errorf("the manager's log does not say why it is not ready:\n%s", tail(out, 2000))
	}
	link.Restore()
	k.must("-n", ns, "wait", "--for=condition=Ready", "--timeout=90s", "comfyuser/olga")
	eventually(t, 30*time.Second, "the manager ready", func() string {
		if code, body := readyz(); code != 200 {
			return fmt.Sprintf("/readyz: %d %s", code, body)
		}
		return ""
	})
	k.must("-n", ns, "delete", "comfyuser", "olga", "--timeout=30s")
}
