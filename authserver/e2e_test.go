package authserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/comfystub"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

const ownerPassword = "Owner-pass-1!"

// env is one auth server in front of the ComfyUI stand-in, on a real database.
type env struct {
	t        testing.TB
	db       *store.Store
	srv      *authserver.Server
	url      string
	stub     *comfystub.Stub
	logs     *testenv.SyncBuffer
	dataDir  string
	hostPort string
	upstream string // the stub's URL
}

// start runs an auth server that trusts loopback as a proxy: tests that vary the client address
// send X-Forwarded-For.
func start(t testing.TB, db *store.Store, edit func(*config.Config)) *env {
	t.Helper()
	return startWith(t, db, edit, authserver.Options{})
}

// startWith is start with more options (a clock); Config, Store, Logger and RefreshInterval
// are set here.
func startWith(t testing.TB, db *store.Store, edit func(*config.Config), o authserver.Options) *env {
	t.Helper()
	return startAt(t, db, func(c *config.Config, _ string) {
		if edit != nil {
			edit(c)
		}
	}, o)
}

// startAt is startWith whose edit also gets the server's own URL, known before it starts (a
// single sign-on provider needs it as the redirect address).
func startAt(t testing.TB, db *store.Store, edit func(*config.Config, string), o authserver.Options) *env {
	t.Helper()
	var handler http.Handler
	front := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { handler.ServeHTTP(w, r) }))
	t.Cleanup(front.Close)
	frontURL := "http://" + front.Listener.Addr().String()
	dir := t.TempDir()
	vars := map[string]string{"SECRET_KEY": testenv.Secret, "MSS_LOGIN_DATA_DIR": dir}
	cfg, _, err := config.LoadBytes([]byte(`{"trusted_proxies": ["127.0.0.1/32", "::1/128"]}`), "config.json",
		func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	stub := comfystub.New()
	up := httptest.NewServer(stub)
	t.Cleanup(up.Close)
	cfg.UpstreamURL = up.URL
	edit(cfg, frontURL)
	logs := &testenv.SyncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	o.Config, o.Store, o.RefreshInterval = cfg, db, 100*time.Millisecond
	o.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := authserver.New(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Background(ctx)
	handler = srv
	front.Start()
	u, _ := url.Parse(front.URL)
	return &env{t: t, db: db, srv: srv, url: front.URL, stub: stub, logs: logs, dataDir: dir, hostPort: u.Host, upstream: up.URL}
}

type resp struct {
	code   int
	body   map[string]any
	raw    string
	header http.Header
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	Timeout: 30 * time.Second}

// do sends a request; hdr holds headers as "Name: value" strings.
func (e *env) do(method, path string, body any, hdr ...string) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for _, h := range hdr {
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Add(k, v)
	}
	res, err := noRedirect.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	out := resp{code: res.StatusCode, raw: string(raw), header: res.Header}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }
func from(ip string) string    { return "X-Forwarded-For: " + ip }

// login returns the session JWT.
func (e *env) login(user, pw, ip string) string {
	e.t.Helper()
	r := e.do("POST", "/login", map[string]string{"username": user, "password": pw}, from(ip))
	if r.code != 200 {
		e.t.Fatalf("login %s: %d %s", user, r.code, r.raw)
	}
	return r.body["jwt_token"].(string)
}

// bootstrap registers the owner (first run) and returns its token.
func (e *env) bootstrap() string {
	e.t.Helper()
	if r := e.do("GET", "/login", nil, "Accept: text/html"); r.code != 302 || r.header.Get("Location") != "/register" {
		e.t.Fatalf("first run must send /login to /register: %d %s", r.code, r.header.Get("Location"))
	}
	r := e.do("POST", "/register", map[string]string{"username": "owner", "password": ownerPassword}, from("192.0.2.1"))
	if r.code != 200 || r.body["jwt_token"] == nil {
		e.t.Fatalf("first-run registration: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/register", map[string]string{"username": "intruder", "password": ownerPassword}, from("192.0.2.2")); r.code != 401 {
		e.t.Fatalf("registration after the first user must need an admin: %d %s", r.code, r.raw)
	}
	return r.body["jwt_token"].(string)
}

func TestEndToEnd(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, db *store.Store) {
		e := start(t, db, nil)
		owner := e.bootstrap()

		t.Run("proxy strips and sets identity", func(t *testing.T) {
			r := e.do("GET", "/api/system_stats?token=x&keep=1", nil, bearer(owner), "Comfy-User: admin", "X-Forwarded-User: admin",
				"X-Auth-Request-User: admin", "Cookie: jwt_token=abc; other=1")
			if r.code != 200 {
				t.Fatalf("%d %s", r.code, r.raw)
			}
			seen := e.stub.Last()
			if seen.ComfyUser != "owner" || seen.Authorization != "" || strings.Contains(seen.Cookie, "jwt_token") ||
				seen.Header.Get("X-Forwarded-User") != "" || seen.Header.Get("X-Auth-Request-User") != "" ||
				strings.Contains(seen.Query, "token=") || !strings.Contains(seen.Query, "keep=1") || !strings.Contains(seen.Cookie, "other=1") {
				t.Fatalf("upstream saw %+v", seen)
			}
		})

		t.Run("normalised path is forwarded", func(t *testing.T) {
			r := e.do("GET", "/api/../api//history/", nil, bearer(owner))
			if r.code != 200 || e.stub.Last().Path != "/api/history" {
				t.Fatalf("%d, upstream path %q", r.code, e.stub.Last().Path)
			}
			if r := e.do("GET", "/manager;x", nil, bearer(owner)); r.code != 400 {
				t.Fatalf("ambiguous path: %d", r.code)
			}
			r = e.do("POST", "/api/userdata/workflows%2Fa.json", map[string]any{}, bearer(owner))
			if r.code != 200 || e.stub.Last().RawPath != "/api/userdata/workflows%2Fa.json" {
				t.Fatalf("encoded slash must reach ComfyUI encoded: %d %q", r.code, e.stub.Last().RawPath)
			}
		})

		t.Run("unauthenticated", func(t *testing.T) {
			n := e.stub.Count()
			if r := e.do("GET", "/api/prompt", nil); r.code != 401 || r.body["code"] != "UNAUTHENTICATED" {
				t.Fatalf("API: %d %s", r.code, r.raw)
			}
			r := e.do("GET", "/queue?x=1", nil, "Accept: text/html", "Sec-Fetch-Mode: navigate")
			if r.code != 302 || r.header.Get("Location") != "/login?next="+url.QueryEscape("/queue?x=1") {
				t.Fatalf("navigation: %d %s", r.code, r.header.Get("Location"))
			}
			if r := e.do("GET", "/view", nil, bearer("mssl_not-a-real-token")); r.code != 401 {
				t.Fatalf("bad token: %d", r.code)
			}
			if r := e.do("GET", "/view", nil, bearer(owner[:len(owner)-3]+"abc")); r.code != 401 {
				t.Fatalf("forged JWT: %d", r.code)
			}
			if e.stub.Count() != n {
				t.Fatal("an unauthenticated request reached ComfyUI")
			}
		})

		t.Run("permissions per role", func(t *testing.T) {
			r := e.do("POST", "/mss-login/api/users", map[string]string{"username": "bob", "password": "Bob-pass-1!", "role": "user"}, bearer(owner))
			if r.code != 201 {
				t.Fatalf("admin creates bob: %d %s", r.code, r.raw)
			}
			bob := e.login("bob", "Bob-pass-1!", "192.0.2.10")
			cases := []struct {
				method, path string
				want         int
				code         string
			}{
				{"POST", "/prompt", 200, ""},
				{"POST", "/api/prompt", 200, ""},
				{"GET", "/manager/queue/status", 403, "MANAGER_DENIED"},
				{"GET", "/api/../manager/x", 403, "MANAGER_DENIED"},
				{"GET", "/%6danager/x", 403, "MANAGER_DENIED"},
				{"GET", "/mss-login/api/users", 403, "ADMIN_REQUIRED"},
				{"POST", "/users", 403, "ADMIN_REQUIRED"},
				{"POST", "/upload/image", 400, "BAD_UPLOAD"}, // allowed, and not a multipart body
				{"GET", "/object_info", 200, ""},
			}
			for _, c := range cases {
				r := e.do(c.method, c.path, map[string]any{}, bearer(bob))
				if r.code != c.want || (c.code != "" && r.body["code"] != c.code) {
					t.Errorf("bob %s %s: %d %s, want %d %s", c.method, c.path, r.code, r.raw, c.want, c.code)
				}
			}
			me := e.do("GET", "/mss-login/api/me", nil, bearer(bob))
			if me.body["username"] != "bob" || me.body["is_admin"] != false {
				t.Fatalf("me: %s", me.raw)
			}
			// A row owned by a Kubernetes resource is read-only here, and the error names it.
			u, _ := db.UserByName(context.Background(), "bob")
			u.OwnerRef = "ComfyUser/team/bob"
			if err := db.UpdateUser(context.Background(), u); err != nil {
				t.Fatal(err)
			}
			r = e.do("PUT", "/mss-login/api/users/bob", map[string]string{"role": "power"}, bearer(owner))
			if r.code != 409 || !strings.Contains(r.raw, "managed by ComfyUser team/bob") {
				t.Fatalf("managed row edited: %d %s", r.code, r.raw)
			}
		})

		t.Run("API tokens", func(t *testing.T) {
			r := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "krita", "expire_hours": 48}, bearer(owner))
			if r.code != 201 {
				t.Fatalf("create: %d %s", r.code, r.raw)
			}
			tok := r.body["token"].(string)
			if !strings.HasPrefix(tok, authserver.TokenPrefix) {
				t.Fatalf("token without its prefix: %q", tok)
			}
			if r := e.do("GET", "/api/queue", nil, bearer(tok)); r.code != 200 || e.stub.Last().ComfyUser != "owner" {
				t.Fatalf("token on REST: %d", r.code)
			}
			if r := e.do("GET", "/api/queue?access_token="+tok, nil); r.code != 200 {
				t.Fatalf("token in the query: %d", r.code)
			}
			list := e.do("GET", "/mss-login/api/tokens", nil, bearer(owner))
			if !strings.Contains(list.raw, `"label":"krita"`) || strings.Contains(list.raw, tok) {
				t.Fatalf("list: %s", list.raw)
			}
			id := r.body["id"].(string)
			if r := e.do("DELETE", "/mss-login/api/tokens/"+id, nil, bearer(owner)); r.code != 200 {
				t.Fatalf("revoke: %d %s", r.code, r.raw)
			}
			if r := e.do("GET", "/api/queue", nil, bearer(tok)); r.code != 401 {
				t.Fatalf("revoked token still works: %d", r.code)
			}
		})

		t.Run("websocket closes on revocation", func(t *testing.T) {
			tok := e.login("owner", ownerPassword, "192.0.2.20")
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, _, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?clientId=1&token="+tok, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.CloseNow()
			if _, msg, err := c.Read(ctx); err != nil || !strings.Contains(string(msg), `"status"`) {
				t.Fatalf("first message: %s %v", msg, err)
			}
			if e.stub.Last().ComfyUser != "owner" || strings.Contains(e.stub.Last().Query, "token") {
				t.Fatalf("upgrade upstream saw %+v", e.stub.Last())
			}
			// Log out this session from another request: the socket must close within 1 s.
			if r := e.do("POST", "/logout", nil, bearer(tok)); r.code != 200 {
				t.Fatalf("logout: %d %s", r.code, r.raw)
			}
			revoked := time.Now()
			for {
				if _, _, err := c.Read(ctx); err != nil {
					break
				}
			}
			if d := time.Since(revoked); d > time.Second {
				t.Fatalf("socket closed %v after revocation", d)
			}
			if r := e.do("GET", "/api/queue", nil, bearer(tok)); r.code != 401 {
				t.Fatalf("session after logout: %d", r.code)
			}
		})

		t.Run("cooldown under 200 parallel wrong attempts", func(t *testing.T) {
			const attacker = "198.51.100.66"
			var wg sync.WaitGroup
			results := make(chan resp, 200)
			for range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					results <- e.do("POST", "/login", map[string]string{"username": "owner", "password": "wrong-1!"}, from(attacker))
				}()
			}
			wg.Wait()
			close(results)
			var checked, refused int
			for r := range results {
				switch {
				case r.code == 401:
					checked++
				case r.code == 403 && r.body["remaining_seconds"] != nil:
					refused++ // cooling down: nothing checked, nothing counted
					if sec := r.body["remaining_seconds"].(float64); sec < 59 || sec > 60 {
						t.Errorf("announced wait %v s, want the 60 s cooldown", sec)
					}
				default:
					t.Errorf("unexpected status %d %s", r.code, r.raw)
				}
			}
			// Attempts are counted before their hash, so parallel ones see each other: exactly
			// the first cooldown threshold's worth are checked, the rest wait.
			if checked != 3 || refused != 197 {
				t.Fatalf("%d password checks and %d refusals for 200 parallel attempts, want 3 and 197", checked, refused)
			}
			n, err := db.Failures(context.Background(), store.ScopeIP, attacker, time.Now(), time.Hour)
			if err != nil || n != 3 {
				t.Fatalf("counted %d failures, want the 3 checked (%v)", n, err)
			}
			if bans, _ := db.Bans(context.Background(), time.Now()); len(bans) != 0 {
				t.Fatalf("a ban after 3 failures: %+v", bans)
			}
			if _, err := db.BanIP(context.Background(), netip.MustParseAddr(attacker), time.Now(), time.Now().Add(time.Hour), "test"); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(3 * time.Second)
			for e.do("GET", "/login", nil, from(attacker)).code != 403 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			// Banned: refused everywhere, before any check.
			if r := e.do("GET", "/login", nil, from(attacker)); r.code != 403 || r.body["code"] != "IP_DENIED" {
				t.Fatalf("banned address: %d %s", r.code, r.raw)
			}
			// Another address is unaffected, and the owner still logs in from it.
			e.login("owner", ownerPassword, "192.0.2.30")
			// security.json unlock_ips lifts the ban for that address (the owner's break-glass).
			os.WriteFile(filepath.Join(e.dataDir, "security.json"), []byte(`{"lockout":{"unlock_ips":["`+attacker+`"]}}`), 0o600)
			deadline = time.Now().Add(3 * time.Second)
			for e.do("GET", "/login", nil, from(attacker)).code == 403 {
				if time.Now().After(deadline) {
					t.Fatal("unlock_ips did not lift the ban")
				}
				time.Sleep(100 * time.Millisecond)
			}
		})

		t.Run("spoofed X-Forwarded-For from an untrusted peer", func(t *testing.T) {
			// An address banned in the database (here, not only by the subtest before, so that
			// this one stands alone), but this server trusts no proxy: the header is ignored and
			// the socket peer (loopback) is the client.
			const banned = "198.51.100.77"
			if _, err := db.BanIP(context.Background(), netip.MustParseAddr(banned), time.Now(), time.Now().Add(time.Hour), "test"); err != nil {
				t.Fatal(err)
			}
			trusting := start(t, db, nil)
			if r := trusting.do("GET", "/login", nil, from(banned)); r.code != 403 {
				t.Fatalf("a server trusting loopback lets the banned address in: %d", r.code)
			}
			e2 := start(t, db, func(c *config.Config) { c.TrustedProxies = nil })
			if r := e2.do("GET", "/login", nil, from(banned)); r.code == 403 {
				t.Fatal("X-Forwarded-For believed from an untrusted peer")
			}
		})

		t.Run("no secret in logs", func(t *testing.T) {
			logs := e.logs.String()
			for _, secret := range []string{ownerPassword, "Bob-pass-1!", "wrong-1!", owner, testenv.Secret, "mssl_"} {
				if strings.Contains(logs, secret) {
					t.Fatalf("a secret reached the logs: %q", secret[:4])
				}
			}
		})
	})
}

func TestCrossSiteCookieRequestsRefused(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	owner := e.bootstrap()
	cookie := "Cookie: jwt_token=" + owner
	if r := e.do("POST", "/prompt", map[string]any{}, cookie, "Origin: https://evil.example", "Sec-Fetch-Site: cross-site"); r.code != 403 {
		t.Fatalf("cross-site POST with the cookie: %d", r.code)
	}
	if r := e.do("POST", "/prompt", map[string]any{}, cookie, "Origin: http://"+e.hostPort, "Sec-Fetch-Site: same-origin"); r.code != 200 {
		t.Fatalf("same-origin POST with the cookie: %d %s", r.code, r.raw)
	}
	// The external URL is learnt from the first admin request through a trusted proxy, and then
	// counts as this site's origin.
	if r := e.do("POST", "/prompt", map[string]any{}, cookie, "Origin: https://comfy.example"); r.code != 403 {
		t.Fatalf("unknown origin before detection: %d", r.code)
	}
	e.do("GET", "/mss-login/api/me", nil, bearer(owner), "X-Forwarded-Proto: https", "X-Forwarded-Host: comfy.example")
	if v, ok, _ := e.db.Setting(context.Background(), "host_base_url"); !ok || v != "https://comfy.example" {
		t.Fatalf("host base URL stored as %q", v)
	}
	if r := e.do("POST", "/prompt", map[string]any{}, cookie, "Origin: https://comfy.example"); r.code != 200 {
		t.Fatalf("origin of the detected host base URL: %d %s", r.code, r.raw)
	}
	// Bearer tokens are not sent by browsers on their own: no origin check needed.
	if r := e.do("POST", "/prompt", map[string]any{}, bearer(owner), "Origin: https://evil.example"); r.code != 200 {
		t.Fatalf("bearer POST: %d", r.code)
	}
	// Open redirects: next= is kept on this site.
	form := url.Values{"username": {"owner"}, "password": {ownerPassword}, "next": {"//evil.example/x"}}
	req, _ := http.NewRequest("POST", e.url+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	req.Header.Set("Accept", "text/html")
	req.Header.Set("X-Forwarded-For", "192.0.2.77")
	res, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 303 || res.Header.Get("Location") != "/" {
		t.Fatalf("login redirect: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
	var jwtCookie *http.Cookie
	for _, c := range res.Cookies() {
		if c.Name == "jwt_token" {
			jwtCookie = c
		}
	}
	if jwtCookie == nil || !jwtCookie.HttpOnly || jwtCookie.SameSite != http.SameSiteStrictMode || jwtCookie.MaxAge <= 0 {
		t.Fatalf("session cookie: %+v", jwtCookie)
	}
}

func TestLoginPageCSP(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	e.bootstrap()
	r := e.do("GET", "/login", nil, "Accept: text/html")
	if r.code != 200 || !strings.Contains(r.raw, `<form method="post" action="/login">`) {
		t.Fatalf("login page: %d", r.code)
	}
	csp := r.header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("CSP %q", csp)
	}
	if strings.Contains(r.raw, "<script") || strings.Contains(r.raw, "http://") || strings.Contains(r.raw, "https://") {
		t.Fatal("the login page loads scripts or third-party assets")
	}
}
