package e2e_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/notify"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// notifications is issue 17's wire test: two auth server processes and a manager on one
// PostgreSQL database, all with the same ntfy topic and signed webhook pointing at a real
// receiver on loopback. A burst of failed logins spread over both replicas is one
// login_failed_burst and one ip_banned per sink; a token created on one replica is one
// token_created; nothing is sent twice, and no password or token is in any message.
func notifications(t *testing.T, k *kube, bin, upstream string) {
	const (
		ns        = "e2e-notify"
		hookKey   = "e2e-hook-key-Q7m"
		ntfyToken = "tk_e2e-ntfy-Z3"
		attacker  = "198.51.100.44"
		typed     = "Typed-Password-In-Name-8"
	)
	var mu sync.Mutex
	got := map[string]int{} // sink|kind|id → deliveries
	var bodies []string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		bodies = append(bodies, string(body))
		switch r.URL.Path {
		case "/hook":
			ts, _ := strconv.ParseInt(r.Header.Get("X-MSS-Login-Timestamp"), 10, 64)
			if r.Header.Get("X-MSS-Login-Signature") != notify.Signature([]byte(hookKey), ts, body) {
				t.Errorf("webhook signature does not verify: %v", r.Header)
			}
			var b notify.WebhookBody
			_ = json.Unmarshal(body, &b)
			got["hook|"+b.Kind+"|"+b.ID]++
		case "/ntfy":
			if r.Header.Get("Authorization") != "Bearer "+ntfyToken {
				t.Errorf("ntfy without its token")
			}
			var m struct{ Topic, Title, Message string }
			_ = json.Unmarshal(body, &m)
			got["ntfy|"+m.Title+"|"+m.Message]++
		}
	}))
	t.Cleanup(rcv.Close)

	k.must("create", "namespace", ns)
	db := testenv.Database(t, store.PostgreSQL)
	cfg := func(listen, metrics string) string {
		dir := t.TempDir()
		raw, _ := json.Marshal(map[string]any{
			"upstream_url": upstream, "listen_address": listen, "metrics_address": metrics,
			"trusted_proxies": []string{"127.0.0.1/32", "::1/128"}, "blacklist_after_attempts": 3,
			"auto_update": map[string]any{"enabled": false}, "users_db": map[string]any{"postgres_sslmode": "disable"},
			"ntfy":          map[string]any{"topic": "alerts", "base_url": rcv.URL + "/ntfy"},
			"webhooks":      []any{map[string]any{"name": "ops", "url": rcv.URL + "/hook", "secret_env": "OPS_HOOK_KEY"}},
			"notifications": map[string]any{"burst_threshold": 2},
		})
		if err := os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	env := func(dir string) []string {
		return append(processEnv(dir, db), "OPS_HOOK_KEY="+hookKey, "NTFY_API_TOKEN="+ntfyToken)
	}
	mgrDir := cfg(freeAddr(t), freeAddr(t))
	mgr := start(t, "manager", append(env(mgrDir), "KUBECONFIG="+k.kubeconfig()), bin, "manager", "--namespace", ns,
		"--metrics-bind-address", "0", "--health-probe-bind-address", freeAddr(t), "--resync-period", "1m")
	var replicas []*client
	for i := range 2 {
		listen := freeAddr(t)
		as := start(t, fmt.Sprintf("authserver-%d", i), env(cfg(listen, freeAddr(t))), bin, "authserver")
		c := &client{t: t, base: "http://" + listen}
		eventually(t, 60*time.Second, "auth server ready", func() string {
			if as.exited() || mgr.exited() {
				t.Fatal("a process exited at start")
			}
			return c.status("GET", "/readyz", "")
		})
		replicas = append(replicas, c)
	}
	k.apply(strings.ReplaceAll(strings.ReplaceAll(manifests(ns, "runner"), "alice", "nora"),
		"{can_access_api: true, can_run: true}", "{can_access_api: true, can_run: true, can_have_api_tokens: true}"))
	k.must("-n", ns, "wait", "--for=condition=Ready", "--timeout=60s", "comfyuser/nora")

	// Wrong passwords from one address, alternating replicas, until it is banned.
	banned := false
	var answers []string
	for i := 0; i < 20 && !banned; i++ {
		r := replicas[i%2].do("POST", "/login", "", attacker, map[string]string{"username": typed, "password": "wrong-" + typed})
		banned = r.code == 403 && r.body["code"] == "IP_DENIED"
		answers = append(answers, fmt.Sprint(r.code, r.body["code"]))
	}
	if !banned {
		t.Fatalf("the failed logins did not ban the address: %v", answers)
	}
	tok := replicas[1].login("nora", alicePassword, "203.0.113.60", 200)
	r := replicas[1].do("POST", "/mss-login/api/tokens", tok, "203.0.113.60", map[string]any{"label": "farm", "password": alicePassword, "expire_hours": 24})
	apiToken, _ := r.body["token"].(string)
	if r.code != 201 || apiToken == "" {
		t.Fatalf("token: %d %s", r.code, r.raw)
	}

	count := func(prefix string) (n int, dup string) {
		mu.Lock()
		defer mu.Unlock()
		for key, c := range got {
			if strings.HasPrefix(key, prefix) {
				n++
				if c > 1 {
					dup = key
				}
			}
		}
		return n, dup
	}
	eventually(t, 30*time.Second, "the notifications", func() string {
		var missing []string
		for _, want := range []string{"hook|login_failed_burst|", "hook|ip_banned|", "hook|token_created|",
			"ntfy|mss-login: Failed logins|", "ntfy|mss-login: Address banned|", "ntfy|mss-login: API token created|"} {
			if n, _ := count(want); n == 0 {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return "missing " + strings.Join(missing, ", ")
		}
		return ""
	})
	time.Sleep(3 * time.Second) // a second copy from the other replica or the manager would arrive now
	for _, want := range []string{"hook|login_failed_burst|", "hook|ip_banned|", "hook|token_created|",
		"ntfy|mss-login: Failed logins|", "ntfy|mss-login: Address banned|", "ntfy|mss-login: API token created|"} {
		if n, dup := count(want); n != 1 || dup != "" {
			t.Errorf("%s: %d notifications (duplicate %q), want one", want, n, dup)
		}
	}
	mu.Lock()
	all := strings.Join(bodies, "\n")
	mu.Unlock()
	for _, secret := range []string{typed, alicePassword, apiToken, tok, hookKey, ntfyToken} {
		if strings.Contains(all, secret) {
			t.Errorf("a message holds a secret (%.6s…)", secret)
		}
	}
}
