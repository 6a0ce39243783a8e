// Package e2e_test is the end-to-end story of mss-login, with the real pieces: a kube-apiserver
// (envtest), the manager and the auth server as processes built from this checkout, a real
// database (SQLite, then PostgreSQL), the chart's CRDs, the real kubectl, and a ComfyUI
// stand-in upstream. It runs under `make test`.
package e2e_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/internal/comfystub"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

const (
	alicePassword = "Alice-e2e-pass-1!"
	secretKey     = "e2e-secret-key-0123456789abcdef-0123456789"
)

func TestEndToEnd(t *testing.T) {
	helm := filepath.Join(root, "bin/helm")
	if _, err := os.Stat(helm); err != nil {
		if testenv.InCI() {
			t.Fatalf("%s is missing: hack/tools.sh helm builds it (make test does)", helm)
		}
		t.Skipf("%s is missing: run hack/tools.sh helm or make test", helm)
	}
	env, _ := testenv.ControlPlane(t)
	kubectl := filepath.Join(env.BinaryAssetsDirectory, "kubectl")
	bin := binary(t)

	kubeconfig := testenv.AdminKubeconfig(t, env)
	k := &kube{t: t, bin: kubectl, env: append(os.Environ(), "KUBECONFIG="+kubeconfig)}

	// The CRDs as the chart ships them (templates/crds, rendered by the real helm).
	crds, err := run(append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir()),
		helm, "template", "e2e", filepath.Join(root, "charts/mss-login"),
		"--show-only", "templates/crds/comfyusers.yaml", "--show-only", "templates/crds/comfyroles.yaml",
		"--show-only", "templates/crds/iprules.yaml", "--show-only", "templates/crds/lockouts.yaml",
		"--show-only", "templates/crds/s3mounts.yaml")
	if err != nil {
		t.Fatalf("helm template (CRDs): %v", err)
	}
	k.apply(crds)
	k.must("wait", "--for=condition=Established", "--timeout=30s", "crd", "--all")

	stub := comfystub.New()
	up := httptest.NewServer(stub)
	t.Cleanup(up.Close)

	for _, b := range []store.Backend{store.SQLite, store.PostgreSQL} {
		t.Run(string(b), func(t *testing.T) {
			story(t, k.with(t), bin, up.URL, stub, b)
		})
	}
	t.Run("model-grants", func(t *testing.T) { modelGrants(t, k.with(t), bin) })
	t.Run("manager-through-database-outage", func(t *testing.T) { managerThroughOutage(t, k.with(t), bin) })
	t.Run("notifications", func(t *testing.T) { notifications(t, k.with(t), bin, up.URL) })
}

// story is the end-to-end story on one database, in its own namespace.
func story(t *testing.T, k *kube, bin, upstream string, stub *comfystub.Stub, backend store.Backend) {
	ns := "e2e-" + string(backend)
	c := startPair(t, k, bin, upstream, backend, ns)

	// Roles and a user with a password Secret, as they would sit in Git.
	k.apply(manifests(ns, "viewer"))
	k.must("-n", ns, "wait", "--for=condition=Ready", "--timeout=60s", "comfyuser/alice", "comfyrole/viewer", "comfyrole/runner")

	// Log in through the proxy; a permitted route reaches ComfyUI as alice, a forbidden one not.
	tok := c.login("alice", alicePassword, "203.0.113.10", 200)
	// The session works at once, even though the user was created by the operator a moment
	// ago (the auth server loads a user it has not cached yet when it logs them in).
	if r := c.do("GET", "/api/queue", tok, "203.0.113.10", nil); r.code != 200 || stub.Last().ComfyUser != "alice" {
		t.Fatalf("permitted GET /api/queue: %d %s (upstream saw comfy-user %q)", r.code, r.raw, stub.Last().ComfyUser)
	}
	if r := c.do("POST", "/api/prompt", tok, "203.0.113.10", map[string]any{"prompt": map[string]any{}}); r.code != 403 {
		t.Fatalf("forbidden POST /api/prompt for a viewer: %d %s", r.code, r.raw)
	}

	// Edit the manifest: alice becomes a runner. The same session may run within seconds.
	k.apply(manifests(ns, "runner"))
	took := eventually(t, 10*time.Second, "role change reaches the auth server", func() string {
		if r := c.do("POST", "/api/prompt", tok, "203.0.113.10", map[string]any{"prompt": map[string]any{}}); r.code != 200 {
			return fmt.Sprintf("POST /api/prompt: %d %s", r.code, r.raw)
		}
		return ""
	})
	t.Logf("role change effective after %v", took)

	// Fail logins from one address until it is banned.
	const attacker = "198.51.100.7"
	banned := false
	for i := 0; i < 10 && !banned; i++ {
		r := c.do("POST", "/login", "", attacker, map[string]string{"username": "alice", "password": "wrong-password-1"})
		banned = r.code == 403 && r.body["code"] == "IP_DENIED"
	}
	if !banned {
		t.Fatal("10 wrong passwords did not ban the address")
	}
	if r := c.do("POST", "/login", "", attacker, map[string]string{"username": "alice", "password": alicePassword}); r.code != 403 {
		t.Fatalf("the right password from a banned address: %d %s", r.code, r.raw)
	}
	// The real kubectl lists the ban, mirrored by the manager…
	var lockout string
	eventually(t, 15*time.Second, "Lockout mirrored", func() string {
		out := k.must("-n", ns, "get", "lockouts", "-o", `jsonpath={range .items[*]}{.metadata.name}={.spec.subject}{"\n"}{end}`)
		for _, line := range strings.Fields(out) {
			if name, subject, _ := strings.Cut(line, "="); subject == attacker {
				lockout = name
				return ""
			}
		}
		return "kubectl get lockouts: " + out
	})
	if table := k.must("-n", ns, "get", "lockouts"); !strings.Contains(table, attacker) {
		t.Errorf("kubectl get lockouts does not show %s:\n%s", attacker, table)
	}
	// …and deleting it lifts the ban.
	k.must("-n", ns, "delete", "lockout", lockout, "--timeout=30s")
	eventually(t, 10*time.Second, "login after kubectl delete lockout", func() string {
		return c.status("POST", "/login", attacker, map[string]string{"username": "alice", "password": alicePassword})
	})

	// A fresh session with an open WebSocket; deleting the ComfyUser closes both.
	tok2 := c.login("alice", alicePassword, "203.0.113.11", 200)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(c.base, "http", "ws", 1)+"/ws?clientId=e2e&token="+tok2, nil)
	if err != nil {
		t.Fatalf("WebSocket through the proxy: %v", err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil {
		t.Fatalf("first WebSocket message: %v", err)
	}
	k.must("-n", ns, "delete", "comfyuser", "alice", "--timeout=30s")
	deleted := time.Now()
	for {
		if _, _, err := ws.Read(ctx); err != nil {
			break // closed by the auth server (the stand-in sends a heartbeat every 100 ms)
		}
		if time.Since(deleted) > 10*time.Second {
			t.Fatal("the WebSocket stays open 10 s after the ComfyUser was deleted")
		}
	}
	t.Logf("WebSocket closed %v after kubectl delete comfyuser", time.Since(deleted))
	eventually(t, 5*time.Second, "session revoked", func() string {
		if r := c.do("GET", "/api/queue", tok2, "203.0.113.11", nil); r.code != 401 {
			return fmt.Sprintf("GET /api/queue with the deleted user's session: %d", r.code)
		}
		return ""
	})
	if r := c.do("POST", "/login", "", "203.0.113.12", map[string]string{"username": "alice", "password": alicePassword}); r.code == 200 {
		t.Fatal("a deleted ComfyUser (deletionPolicy Disable) can still log in")
	}
	// Remove the roles while this manager still runs their finalizers: the next backend's
	// manager watches every namespace and would see two ComfyRoles named viewer.
	k.must("-n", ns, "delete", "comfyroles", "--all", "--timeout=30s")
}

// startPair starts a manager for namespace ns (created here) and an auth server in front of
// upstream, on a fresh database of backend, and waits until the auth server is ready.
func startPair(t *testing.T, k *kube, bin, upstream string, backend store.Backend, ns string) *client {
	k.must("create", "namespace", ns)
	dir := t.TempDir()
	listen, metrics, probes := freeAddr(t), freeAddr(t), freeAddr(t)
	cfg := map[string]any{
		"upstream_url":             upstream,
		"listen_address":           listen,
		"metrics_address":          metrics,
		"trusted_proxies":          []string{"127.0.0.1/32", "::1/128"}, // the test varies X-Forwarded-For
		"blacklist_after_attempts": 3,
		"auto_update":              map[string]any{"enabled": false}, // no network here
	}
	db := testenv.Database(t, backend)
	if backend == store.PostgreSQL {
		cfg["users_db"] = map[string]any{"postgres_sslmode": "disable"}
	}
	procEnv := processEnv(dir, db)
	raw, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}

	// The auth server gets no kubeconfig at all: it holds no Kubernetes credentials.
	mgr := start(t, "manager", append(procEnv, "KUBECONFIG="+k.kubeconfig()), bin, "manager",
		"--namespace", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", probes, "--resync-period", "1m")
	as := start(t, "authserver", procEnv, bin, "authserver")
	c := &client{t: t, base: "http://" + listen}
	eventually(t, 60*time.Second, "auth server ready", func() string {
		if as.exited() || mgr.exited() {
			t.Fatal("a process exited at start")
		}
		return c.status("GET", "/readyz", "")
	})
	return c
}

// processEnv is the environment of a manager or auth server process: its data directory and
// the users database db (SQLite or PostgreSQL; the config file sets postgres_sslmode).
func processEnv(dir string, db store.Options) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "MSS_LOGIN_DATA_DIR=" + dir, "SECRET_KEY=" + secretKey}
	if db.Backend == store.SQLite {
		return append(env, "USERS_DB_BACKEND=sqlite", "USERS_DB_SQLITE_PATH="+db.SQLitePath)
	}
	return append(env, "USERS_DB_BACKEND=postgresql", "USERS_DB_POSTGRES_HOST="+db.Host,
		"USERS_DB_POSTGRES_PORT="+strconv.Itoa(db.Port), "USERS_DB_POSTGRES_DATABASE="+db.Database,
		"USERS_DB_POSTGRES_USER="+db.User, "USERS_DB_PASSWORD="+db.Password)
}

// manifests are alice, her password Secret and two roles; role is the one alice has.
func manifests(ns, role string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: alice-password, namespace: %[1]s}
stringData: {password: %[2]q}
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyRole
metadata: {name: viewer, namespace: %[1]s}
spec:
  permissions: {can_access_api: true, can_run: false}
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyRole
metadata: {name: runner, namespace: %[1]s}
spec:
  permissions: {can_access_api: true, can_run: true}
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: ComfyUser
metadata: {name: alice, namespace: %[1]s}
spec:
  username: alice
  role: %[3]s
  passwordSecretRef: {name: alice-password}
`, ns, alicePassword, role)
}

// kube runs the real kubectl against the envtest API server.
type kube struct {
	t   *testing.T
	bin string
	env []string
}

func (k *kube) with(t *testing.T) *kube { return &kube{t: t, bin: k.bin, env: k.env} }

func (k *kube) kubeconfig() string {
	for _, kv := range k.env {
		if v, ok := strings.CutPrefix(kv, "KUBECONFIG="); ok {
			return v
		}
	}
	return ""
}

func (k *kube) must(args ...string) string {
	k.t.Helper()
	out, err := run(k.env, k.bin, args...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

func (k *kube) apply(manifest string) {
	k.t.Helper()
	f := filepath.Join(k.t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o600); err != nil {
		k.t.Fatal(err)
	}
	k.must("apply", "-f", f)
}

// client talks to the auth server as clients at various addresses, through a trusted
// loopback "proxy" (X-Forwarded-For).
type client struct {
	t    *testing.T
	base string
}

type resp struct {
	code int
	raw  string
	body map[string]any
}

var httpClient = &http.Client{Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

func (c *client) do(method, path, token, ip string, body any) resp {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if ip != "" {
		req.Header.Set("X-Forwarded-For", ip)
	}
	res, err := httpClient.Do(req)
	if err != nil {
		return resp{code: 0, raw: err.Error()}
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{code: res.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

// status is "" on a 200 answer, else what was answered.
func (c *client) status(method, path, ip string, body ...any) string {
	var b any
	if len(body) > 0 {
		b = body[0]
	}
	if r := c.do(method, path, "", ip, b); r.code != 200 {
		return fmt.Sprintf("%s %s: %d %s", method, path, r.code, tail(r.raw, 300))
	}
	return ""
}

func (c *client) login(user, pw, ip string, want int) string {
	c.t.Helper()
	r := c.do("POST", "/login", "", ip, map[string]string{"username": user, "password": pw})
	if r.code != want {
		c.t.Fatalf("login %s from %s: %d %s", user, ip, r.code, r.raw)
	}
	tok, _ := r.body["jwt_token"].(string)
	return tok
}
