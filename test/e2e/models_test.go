package e2e_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// modelGrants: model grants declared in Git (a ComfyRole's and a ComfyUser's spec.models)
// reach the real ComfyUI's listings through the manager and the auth server; a pattern added
// with kubectl shows within seconds; the status counts what each pattern matches and names the
// one that matches none; the admin API cannot remove a resource's grant.
func modelGrants(t *testing.T, k *kube, bin string) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	base := testenv.Require(t, testenv.ComfyUIDir)
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	g := "git" + sfx
	ckA, ckB, lora := g+"/a.safetensors", g+"/b.safetensors", g+"-l.safetensors"
	for _, f := range []string{"checkpoints/" + ckA, "checkpoints/" + ckB, "loras/" + lora} {
		p := filepath.Join(base, "models", f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("not a model"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Remove(p) })
	}
	ns := "e2e-models"
	c := startPair(t, k, bin, comfy, store.SQLite, ns)
	manifest := func(rolePatterns ...string) string {
		quoted, _ := json.Marshal(rolePatterns)
		return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: painter-password, namespace: %[1]s}
stringData: {password: %[2]q}
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyRole
metadata: {name: painters, namespace: %[1]s}
spec:
  permissions: {can_access_api: true, can_run: true, can_manage_model_sharing: true}
  models:
  - folder: checkpoints
    patterns: %[3]s
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyUser
metadata: {name: bea, namespace: %[1]s}
spec:
  username: bea
  role: painters
  passwordSecretRef: {name: painter-password}
  models:
  - folder: loras
    patterns: [%[4]q]
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyUser
metadata: {name: cal, namespace: %[1]s}
spec:
  username: cal
  role: painters
  passwordSecretRef: {name: painter-password}
`, ns, alicePassword, quoted, lora)
	}
	k.apply(manifest(g + "/a*"))
	k.must("-n", ns, "wait", "--for=condition=Ready", "--timeout=60s", "comfyuser/bea", "comfyuser/cal", "comfyrole/painters")
	tok := map[string]string{"bea": c.login("bea", alicePassword, "203.0.113.40", 200), "cal": c.login("cal", alicePassword, "203.0.113.41", 200)}
	list := func(who, folder string) string {
		r := c.do("GET", "/api/models/"+folder, tok[who], "203.0.113.40", nil)
		var names []string
		if r.code != 200 || json.Unmarshal([]byte(r.raw), &names) != nil {
			return fmt.Sprintf("%d %s", r.code, tail(r.raw, 200))
		}
		var mine []string
		for _, n := range names {
			if strings.Contains(n, g) {
				mine = append(mine, n)
			}
		}
		slices.Sort(mine)
		return strings.Join(mine, " ")
	}
	expect := func(what, who, folder, want string) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() string {
			if got := list(who, folder); got != want {
				return fmt.Sprintf("%s's %s: %q, want %q", who, folder, got, want)
			}
			return ""
		})
	}
	expect("the role's grant", "cal", "checkpoints", ckA)
	expect("the role's grant for bea too", "bea", "checkpoints", ckA)
	expect("bea's own grant", "bea", "loras", lora)
	expect("not cal's", "cal", "loras", "")
	// The loader's options and a prompt, as ComfyUI's frontend sees them.
	r := c.do("GET", "/api/object_info/CheckpointLoaderSimple", tok["cal"], "203.0.113.41", nil)
	if r.code != 200 || !strings.Contains(r.raw, ckA) || strings.Contains(r.raw, ckB) {
		t.Errorf("cal's loader options: %d, names a: %t, b: %t", r.code, strings.Contains(r.raw, ckA), strings.Contains(r.raw, ckB))
	}
	prompt := map[string]any{"prompt": map[string]any{"4": map[string]any{"class_type": "CheckpointLoaderSimple", "inputs": map[string]any{"ckpt_name": ckB}}}}
	if r := c.do("POST", "/api/prompt", tok["cal"], "203.0.113.41", prompt); r.code != 403 || r.body["code"] != "MODEL_NOT_ALLOWED" || r.body["model"] != ckB {
		t.Errorf("cal's prompt naming b: %d %s", r.code, r.raw)
	}

	// A pattern added in Git: the listings within seconds, the counts in status.
	k.apply(manifest(g+"/a*", ckB, g+"/none*"))
	took := eventually(t, 15*time.Second, "the added pattern", func() string {
		if got := list("cal", "checkpoints"); got != ckA+" "+ckB {
			return "cal's checkpoints: " + got
		}
		return ""
	})
	t.Logf("a pattern added with kubectl apply reached the listings after %v", took)
	if r := c.do("POST", "/api/prompt", tok["cal"], "203.0.113.41", prompt); r.code == 403 {
		t.Errorf("cal's prompt naming b once granted: %d %s", r.code, r.raw)
	}
	eventually(t, 30*time.Second, "the role's status counts", func() string {
		out := k.must("-n", ns, "get", "comfyrole", "painters", "-o",
			`jsonpath={range .status.models[*]}{.pattern}={.matches} {end}|{.status.conditions[?(@.type=="ModelsMatched")].reason}|{.status.conditions[?(@.type=="ModelsMatched")].message}`)
		want := fmt.Sprintf("%s/a*=1 %s=1 %s/none*=0 |PatternMatchesNone|no model ComfyUI lists matches checkpoints/%s/none*", g, ckB, g, g)
		if out != want {
			return fmt.Sprintf("status %q, want %q", out, want)
		}
		return ""
	})

	// The role's grant is Git's: the admin API names the resource and removes nothing.
	r = c.do("DELETE", "/mss-login/api/users/cal/shared-items", tok["bea"], "203.0.113.40", map[string]string{"folder": "checkpoints", "pattern": ckB})
	if r.code != 409 || !strings.Contains(r.raw, "ComfyRole "+ns+"/painters") {
		t.Errorf("removing the role's grant through the API: %d %s", r.code, r.raw)
	}
	// Deleting bea's resource takes her own grant with it.
	k.must("-n", ns, "delete", "comfyuser", "bea", "--timeout=30s")
	eventually(t, 5*time.Second, "bea's own grant gone with her ComfyUser", func() string {
		if r := c.do("GET", "/mss-login/api/users/bea/shared-items", tok["cal"], "203.0.113.41", nil); r.code != 200 || strings.Contains(r.raw, lora) ||
			!strings.Contains(r.raw, ckB) {
			return fmt.Sprintf("bea's grants: %d %s", r.code, r.raw)
		}
		return ""
	})
	k.must("-n", ns, "delete", "comfyuser", "cal", "--timeout=30s")
	k.must("-n", ns, "delete", "comfyrole", "painters", "--timeout=30s")
}
