package authserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/crypto/bcrypt"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The holes of the security review (issue 11), each tried as an attacker would.

// Hole 1: ComfyUI-Manager 4.x serves its routes under /v2 (and ComfyUI repeats them under /api):
// every prefix lands on the manager rule, for a user and for a guest.
func TestManagerUnderEveryPrefix(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), func(c *config.Config) { c.AllowGuestJWT = true })
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "uma", "password": "Uma-pass-1!", "role": "user"}, bearer(owner))
	uma := e.login("uma", "Uma-pass-1!", "192.0.2.150")
	guest := e.do("POST", "/login", map[string]string{"guest_login": "true"}, from("192.0.2.151")).body["jwt_token"].(string)
	n := e.stub.Count()
	for _, tok := range []string{uma, guest} {
		for _, path := range []string{"/api/v2/manager/queue/task", "/v2/manager/queue/task", "/api/v2/manager/queue/update_all",
			"/v2/snapshot/restore", "/api/v2/customnode/install/git_url", "/v2/comfyui_manager/comfyui_switch_version",
			"/api/api/v2/manager/queue/install_model", "/v1/manager/reboot", "/API/V2/Manager/queue/task", "/v3/snapshot/save",
			"/api/v2/manager/share", "/extensions/comfyui-manager-legacy/custom-nodes-manager.js"} {
			if r := e.do("POST", path, map[string]any{"ui_id": "x"}, bearer(tok)); r.code != 403 || r.body["code"] != "MANAGER_DENIED" {
				t.Errorf("POST %s: %d %s, want 403 MANAGER_DENIED", path, r.code, r.raw)
			}
		}
	}
	if e.stub.Count() != n {
		t.Fatal("a manager request reached ComfyUI")
	}
	if r := e.do("POST", "/api/v2/manager/queue/task", map[string]any{}, bearer(owner)); r.code != 200 {
		t.Fatalf("the owner's manager request: %d %s", r.code, r.raw)
	}
}

// Hole 2: neither the session JWT nor an API token reaches ComfyUI, however it was sent: an
// encoded query key, a second Cookie line, on REST and on /ws.
func TestCredentialsNeverReachUpstream(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	owner := e.bootstrap()
	tok := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "leak"}, bearer(owner)).body["token"].(string)
	leaks := func(what string) {
		t.Helper()
		seen := e.stub.Last()
		all := seen.Path + "?" + seen.Query
		for k, v := range seen.Header {
			all += "\n" + k + ": " + strings.Join(v, "\n"+k+": ")
		}
		for _, secret := range []string{owner, tok, jtiOf(t, owner)} {
			if strings.Contains(all, secret) {
				t.Errorf("%s: a credential reached ComfyUI:\n%s", what, all)
			}
		}
		if seen.ComfyUser != "owner" {
			t.Errorf("%s: not authenticated upstream (comfy-user %q)", what, seen.ComfyUser)
		}
	}
	for _, q := range []string{"%74oken=" + owner, "%74%6Fken=" + tok, "access%5Ftoken=" + tok, "keep=1&%74oken=" + owner + "&keep=2",
		"t%6Fken=" + owner + "&token=" + owner, "%zz=1&token=" + tok} {
		r := e.do("GET", "/api/system_stats?"+q, nil)
		if r.code != 200 {
			t.Fatalf("?%s: %d %s", q, r.code, r.raw)
		}
		leaks("query " + q)
	}
	e.do("GET", "/api/system_stats?keep=1&%74oken="+owner+"&keep=2", nil)
	if q := e.stub.Last().Query; q != "keep=1&keep=2" {
		t.Errorf("other query values must survive in order: %q", q)
	}
	// A second Cookie line: authentication reads every line, so the rewrite must too.
	for _, lines := range [][]string{
		{"Cookie: theme=dark", "Cookie: jwt_token=" + owner},
		{"Cookie: jwt_token=" + owner, "Cookie: jwt_token=" + owner + "; theme=dark"},
		{"Cookie: a=1; jwt_token=" + owner + "; b=2", "Cookie: c=3"},
	} {
		r := e.do("GET", "/api/system_stats", nil, lines...)
		if r.code != 200 {
			t.Fatalf("%v: %d %s", lines, r.code, r.raw)
		}
		leaks(strings.Join(lines, " / "))
		if c := e.stub.Last().Header["Cookie"]; len(c) > 1 {
			t.Errorf("%v: upstream got %d Cookie lines", lines, len(c))
		}
	}
	if c := e.stub.Last().Header.Get("Cookie"); c != "a=1; b=2; c=3" {
		t.Errorf("the other cookies must reach ComfyUI: %q", c)
	}
	// The WebSocket upgrade, with the token under an encoded key.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?clientId=7&%74oken="+owner, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.Read(ctx); err != nil {
		t.Fatal(err)
	}
	leaks("/ws")
	if q := e.stub.Last().Query; !strings.HasPrefix(q, "clientId=mssl") || !strings.HasSuffix(q, "-7") {
		t.Errorf("/ws query upstream %q, want only the client id (with the user's prefix)", q)
	}
}

// Hole 3: a logout the database could not record says so (the cookie is cleared anyway), and the
// revocation is stored when the database is back, so another replica refuses the session too.
func TestLogoutDuringOutage(t *testing.T) {
	opts, link := testenv.ThroughLink(t, testenv.Database(t, store.PostgreSQL))
	a := start(t, testenv.OpenOptions(t, opts), nil)
	owner := a.bootstrap()
	b := start(t, testenv.OpenOptions(t, opts), nil)
	tok := a.login("owner", ownerPassword, "192.0.2.160")
	if r := b.do("GET", "/api/queue", nil, bearer(tok)); r.code != 200 {
		t.Fatalf("replica b: %d %s", r.code, r.raw)
	}
	_ = owner
	link.Cut()
	r := a.do("POST", "/logout", nil, bearer(tok))
	if r.code != 503 || r.body["code"] != "LOGOUT_INCOMPLETE" {
		t.Fatalf("logout during an outage: %d %s, want 503 LOGOUT_INCOMPLETE", r.code, r.raw)
	}
	if sc := r.header.Get("Set-Cookie"); !strings.Contains(sc, "jwt_token=;") || !strings.Contains(sc, "Max-Age=0") {
		t.Errorf("the cookie must be cleared anyway: %q", sc)
	}
	if r := a.do("GET", "/api/queue", nil, bearer(tok)); r.code != 401 {
		t.Errorf("the replica that logged out still accepts the session: %d", r.code)
	}
	link.Restore()
	eventually(t, "the other replica refuses the session once the database is back", func() bool {
		return b.do("GET", "/api/queue", nil, bearer(tok)).code == 401
	})
}

// The attempts of one address across two replicas on one database.
func TestStormAcrossReplicas(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, db *store.Store) {
		a := start(t, db, nil)
		a.bootstrap()
		b := start(t, db, nil)
		const attacker = "198.51.100.90"
		var wg sync.WaitGroup
		codes := make(chan int, 200)
		for i := range 200 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				e := a
				if i%2 == 1 {
					e = b
				}
				codes <- e.do("POST", "/login", map[string]string{"username": "owner", "password": "wrong-1!"}, from(attacker)).code
			}()
		}
		wg.Wait()
		close(codes)
		checked := 0
		for c := range codes {
			if c == 401 {
				checked++
			} else if c != 403 {
				t.Errorf("status %d", c)
			}
		}
		if n, _ := db.Failures(context.Background(), store.ScopeIP, attacker, time.Now(), time.Hour); checked != 3 || n != 3 {
			t.Fatalf("%d password checks, %d failures counted across two replicas; want 3 and 3", checked, n)
		}
	})
}

// Holes 4 and 5: the lockout arithmetic. A refusal during a cooldown counts nothing and says the
// real time left; waiting exactly that long is enough; the failure that reaches
// blacklist_after_attempts is the one that bans.
func TestLockoutArithmetic(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, db *store.Store) {
		clk := &clock{}
		e := startWith(t, db, func(c *config.Config) { c.BlacklistAfterAttempts = 10 }, authserver.Options{Now: clk.now})
		e.bootstrap()
		attempt := func(ip, pw string) resp {
			return e.do("POST", "/login", map[string]string{"username": "owner", "password": pw}, from(ip))
		}
		failures := func(ip string) int {
			n, err := db.Failures(context.Background(), store.ScopeIP, ip, clk.now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}

		// Three failures, then the page says 60 s; asking again after 20 s says 40 and counts
		// nothing; six refusals in a row change nothing; after the announced wait the right
		// password gets in.
		const user = "192.0.2.170"
		for range 3 {
			if r := attempt(user, "wrong-1!"); r.code != 401 {
				t.Fatalf("failure: %d %s", r.code, r.raw)
			}
		}
		r := attempt(user, ownerPassword)
		if r.code != 403 || r.body["remaining_seconds"] != float64(60) || r.body["failed_attempts"] != float64(3) {
			t.Fatalf("during the cooldown: %d %s, want 403 with 60 s and 3 failures", r.code, r.raw)
		}
		for range 6 {
			clk.advance(time.Second)
			attempt(user, ownerPassword)
		}
		clk.advance(14 * time.Second)
		r = attempt(user, ownerPassword)
		if r.body["remaining_seconds"] != float64(40) || failures(user) != 3 {
			t.Fatalf("after 20 s: %s, %d failures; want 40 s left and still 3", r.raw, failures(user))
		}
		clk.advance(40 * time.Second)
		if r := attempt(user, ownerPassword); r.code != 200 {
			t.Fatalf("the right password after the announced wait: %d %s", r.code, r.raw)
		}
		if failures(user) != 0 {
			t.Fatal("a success must forget the failures")
		}

		// Following every announced wait, the tenth failure bans — not the eleventh.
		const attacker = "198.51.100.171"
		banned := func() bool {
			bans, _ := db.Bans(context.Background(), clk.now())
			return slices.ContainsFunc(bans, func(b store.IPRule) bool { return b.CIDR.Addr() == netip.MustParseAddr(attacker) })
		}
		checked := 0
		for checked < 10 {
			r := attempt(attacker, "wrong-1!")
			switch {
			case r.code == 401:
				checked++
				if checked < 10 && banned() {
					t.Fatalf("banned after %d failures", checked)
				}
			case r.code == 403 && r.body["remaining_seconds"] != nil:
				clk.advance(time.Duration(r.body["remaining_seconds"].(float64)) * time.Second)
			default:
				t.Fatalf("after %d failures: %d %s", checked, r.code, r.raw)
			}
		}
		if !banned() {
			t.Fatal("ten failures and no ban")
		}
		if r := e.do("GET", "/login", nil, from(attacker)); r.code != 403 || r.body["code"] != "IP_DENIED" {
			t.Fatalf("after the ban: %d %s", r.code, r.raw)
		}
	})
}

// Hole 6: a wrong password for an account with a bcrypt hash (imported, or from a ComfyUser
// Secret) costs what an unknown username costs, and what a wrong argon2id password costs.
func TestUsernamesNotToldApartByTiming(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	legacy, _ := bcrypt.GenerateFromPassword([]byte("Legacy-pass-1!"), 12)
	modern, _ := password.Hash("Modern-pass-1!")
	for name, h := range map[string]string{"imported": string(legacy), "modern": modern} {
		u := store.User{Username: name, Role: "user", PasswordHash: h}
		if err := db.CreateUser(context.Background(), &u); err != nil {
			t.Fatal(err)
		}
	}
	e := start(t, db, nil) // measures the hash kinds it finds
	ip := 0
	cost := func(user string) time.Duration {
		var slowest time.Duration
		for range 3 {
			ip++
			start := time.Now()
			if r := e.do("POST", "/login", map[string]string{"username": user, "password": "wrongpass1"}, from(fmt.Sprintf("192.0.2.%d", ip))); r.code != 401 {
				t.Fatalf("%s: %d %s", user, r.code, r.raw)
			}
			slowest = max(slowest, time.Since(start))
		}
		return slowest
	}
	imported, argon, unknown := cost("imported"), cost("modern"), cost("nobody")
	t.Logf("wrong password: bcrypt account %v, argon2id account %v, unknown name %v", imported, argon, unknown)
	for name, d := range map[string]time.Duration{"unknown name": unknown, "argon2id account": argon} {
		if r := float64(d) / float64(imported); r < 0.8 || r > 1.25 {
			t.Errorf("%s took %.2f× the bcrypt account's time", name, r)
		}
	}
}

// Hole 7: recovery mode refuses a cross-site POST (a page elsewhere opened by someone on the
// recovery host), like every other state change.
func TestRecoveryRefusesCrossSite(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, func(c *config.Config) {
		c.RecoveryMode = true
		c.RecoveryModeHosts = []string{"127.0.0.1/32"}
		c.TrustedProxies = nil
	})
	e.bootstrap()
	u, _ := db.UserByName(context.Background(), "owner")
	if err := db.SetMFA(context.Background(), u.ID, "JBSWY3DPEHPK3PXP", true); err != nil {
		t.Fatal(err)
	}
	for _, hdr := range [][]string{
		{"Origin: https://evil.example", "Sec-Fetch-Site: cross-site"},
		{"Origin: https://evil.example"},
		{"Sec-Fetch-Site: same-site"},
		{"Origin: null"},
	} {
		if r := e.do("POST", "/api/mss-login/recovery/reset-mfa", nil, hdr...); r.code != 403 || r.body["code"] != "CROSS_SITE" {
			t.Errorf("cross-site recovery %v: %d %s", hdr, r.code, r.raw)
		}
	}
	if got, _ := db.UserByName(context.Background(), "owner"); !got.MFAEnabled {
		t.Fatal("a cross-site request reset MFA")
	}
	if r := e.do("POST", "/api/mss-login/recovery/reset-mfa", nil); r.code != 200 {
		t.Fatalf("recovery from the host itself (no browser page): %d %s", r.code, r.raw)
	}
	// Login CSRF too: a page elsewhere cannot sign the browser in to an account of its choice.
	if r := e.do("POST", "/login", map[string]string{"username": "owner", "password": ownerPassword}, "Origin: https://evil.example"); r.code != 403 {
		t.Errorf("cross-site login: %d", r.code)
	}
}

// Hole 8: a script with a valid token that is asked for its password does not count a failed
// login; the bulk settings write is decided on the settings it writes.
func TestSmallerHoles(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	owner := e.bootstrap()
	tok := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "script"}, bearer(owner)).body["token"].(string)
	for range 5 {
		r := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "more"}, bearer(tok), from("192.0.2.190"))
		if r.code != 401 || r.body["code"] != "REAUTH_REQUIRED" {
			t.Fatalf("token creation with a token and no password: %d %s", r.code, r.raw)
		}
	}
	if n, _ := db.Failures(context.Background(), store.ScopeIP, "192.0.2.190", time.Now(), time.Hour); n != 0 {
		t.Fatalf("%d failed logins counted for asking for the password", n)
	}

	e.do("POST", "/mss-login/api/users", map[string]string{"username": "vic", "password": "Vic-pass-1!", "role": "guest"}, bearer(owner))
	vic := e.login("vic", "Vic-pass-1!", "192.0.2.191")
	n := e.stub.Count()
	for _, body := range []map[string]any{
		{"Comfy.Extension.Disabled": []string{"mss-login"}},
		{"Comfy.ColorPalette": "dark", "Comfy.Extension.Disabled": []string{}},
	} {
		for _, path := range []string{"/api/settings", "/settings", "/api/v1/settings"} {
			if r := e.do("POST", path, body, bearer(vic)); r.code != 403 || r.body["code"] != "EXTENSIONS_DENIED" {
				t.Errorf("POST %s %v: %d %s", path, body, r.code, r.raw)
			}
		}
	}
	if r := e.do("POST", "/api/settings", "not an object", bearer(vic)); r.code != 403 {
		t.Errorf("a body that is not an object: %d", r.code)
	}
	if e.stub.Count() != n {
		t.Fatal("a refused settings write reached ComfyUI")
	}
	if r := e.do("POST", "/api/settings", map[string]any{"Comfy.ColorPalette": "dark"}, bearer(vic)); r.code != 200 ||
		e.stub.Last().Path != "/api/settings" {
		t.Fatalf("an ordinary settings write: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/api/settings", map[string]any{"Comfy.Extension.Disabled": []string{}}, bearer(owner)); r.code != 200 {
		t.Fatalf("the owner's extension settings: %d", r.code)
	}
	big := map[string]any{"x": strings.Repeat("a", 2<<20)}
	if r := e.do("POST", "/api/settings", big, bearer(owner)); r.code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized settings body: %d", r.code)
	}
}

// Findings of a review of the change, each tried as the reviewer did.
func TestReviewFindings(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "gil", "password": "Gil-pass-1!", "role": "guest"}, bearer(owner))
	gil := e.login("gil", "Gil-pass-1!", "192.0.2.250")

	// Forward auth's mode is the route that matched, not a suffix of the path.
	for _, hdr := range [][]string{
		{"X-Original-Method: GET", "X-Original-URL: https://x/login"},
		{"X-Forwarded-Method: GET", "X-Forwarded-Uri: /login"},
	} {
		r := e.do("POST", "/mss-login/authz/ext-authz/api/userdata/workflows%2Fauth-request", nil, hdr...)
		if r.code != 401 {
			t.Errorf("ext-authz path ending like another mode %v: %d %s", hdr, r.code, r.raw)
		}
	}
	if r := e.do("GET", "/MSS-LOGIN/AUTHZ/EXT-AUTHZ/mss-login/authz/ext-authz/x", nil); r.code != 400 {
		t.Errorf("forward auth asked about itself: %d %s", r.code, r.raw)
	}

	// HEAD /logout is the GET confirmation page: the session survives.
	if r := e.do("HEAD", "/logout", nil, bearer(gil)); r.code != 200 {
		t.Fatalf("HEAD /logout: %d", r.code)
	}
	if r := e.do("GET", "/api/system_stats", nil, bearer(gil)); r.code != 200 {
		t.Fatalf("HEAD /logout revoked the session: %d", r.code)
	}

	// A body in another charset is not read the way ComfyUI reads it: refused.
	for _, ct := range []string{"application/json; charset=utf-7", "application/json; charset=unicode_escape"} {
		req, _ := http.NewRequest("POST", e.url+"/api/settings",
			strings.NewReader(`{"a+ACI-:1,+ACI-Comfy.Extension.Disabled+ACI-:[],+ACI-b":2}`))
		req.Header.Set("Content-Type", ct)
		req.Header.Set("Authorization", "Bearer "+gil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 403 {
			t.Errorf("settings body in %s: %d", ct, res.StatusCode)
		}
	}
	if r := e.do("POST", "/api/userdata/comfy.settings.json", map[string]any{"Comfy.Extension.Disabled": []string{}}, bearer(gil)); r.code != 403 {
		t.Errorf("the settings file written directly: %d", r.code)
	}
	// The auth server's namespace under a prefix never reaches ComfyUI.
	n := e.stub.Count()
	for _, p := range []string{"/api/login", "/v1/mss-login/api/me", "/api/register"} {
		e.do("GET", p, nil, bearer(gil))
	}
	if e.stub.Count() != n {
		t.Error("a path of the auth server's namespace under a prefix was forwarded")
	}

	// A confirmed own password takes back only its own attempt, not the address's failures.
	const ip = "192.0.2.251"
	for range 2 {
		e.do("POST", "/login", map[string]string{"username": "owner", "password": "wrong-1!"}, from(ip))
	}
	e.do("POST", "/mss-login/api/password", map[string]string{"current_password": "Gil-pass-1!", "new_password": "x"}, bearer(gil), from(ip))
	if n, _ := db.Failures(context.Background(), store.ScopeIP, ip, time.Now(), time.Hour); n != 2 {
		t.Errorf("%d failures after a confirmed password, want the 2 before it", n)
	}

	// Once the site's address is known, a Host header naming another site is not this origin.
	if err := db.SetSetting(context.Background(), "host_base_url", "https://comfy.example"); err != nil {
		t.Fatal(err)
	}
	rebound := startWith(t, db, nil, authserver.Options{})
	req, _ := http.NewRequest("POST", rebound.url+"/login", strings.NewReader(`{"username":"owner","password":"x"}`))
	req.Host = "rebind.evil.example"
	req.Header.Set("Origin", "http://rebind.evil.example")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 403 {
		t.Errorf("a rebound Host passed the origin check: %d", res.StatusCode)
	}
}

// Newer ComfyUI cancels jobs by id (POST /api/jobs/{id}/cancel, /api/jobs/cancel): only one's own.
// (ComfyUI v0.8, the one make test runs, has no such route: this is tried on the stand-in.)
func TestCancelOnlyOwnJobs(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "kim", "password": "Kim-pass-1!", "role": "user"}, bearer(owner))
	kim := e.login("kim", "Kim-pass-1!", "192.0.2.252")
	own := e.do("POST", "/api/prompt", map[string]any{"prompt": map[string]any{}}, bearer(kim)).body["prompt_id"].(string)
	ownerID := e.do("POST", "/api/prompt", map[string]any{"prompt": map[string]any{}}, bearer(owner)).body["prompt_id"].(string)
	for path, want := range map[string]int{"/api/jobs/" + own + "/cancel": 200, "/api/jobs/" + ownerID + "/cancel": 403,
		"/api/v2/jobs/" + ownerID + "/cancel": 403, "/api/jobs/nobodys/cancel": 403} {
		if r := e.do("POST", path, map[string]any{}, bearer(kim)); r.code != want {
			t.Errorf("POST %s: %d %s, want %d", path, r.code, r.raw, want)
		}
	}
	if r := e.do("POST", "/api/jobs/cancel", map[string]any{"job_ids": []string{own, ownerID}}, bearer(kim)); r.code != 200 ||
		e.stub.Last().Body != `{"job_ids":["`+own+`"]}` {
		t.Errorf("batch cancel: %d %s, ComfyUI got %s", r.code, r.raw, e.stub.Last().Body)
	}
	if r := e.do("POST", "/api/jobs/"+own+"/cancel", map[string]any{}, bearer(owner)); r.code != 200 {
		t.Errorf("the admin cancels kim's job: %d", r.code)
	}
}

// A banned address is told when the ban ends, on a page with its stylesheet and icon: the auth
// server's own static files are served to every address, and nothing else is — not through a
// path that only looks like theirs. Every page's /favicon.ico is answered, signed in or not.
func TestBanPage(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	e.bootstrap()
	const banned = "198.51.100.78"
	if _, err := db.BanIP(context.Background(), netip.MustParseAddr(banned), time.Now(), time.Now().Add(90*time.Minute), "test"); err != nil {
		t.Fatal(err)
	}
	html := "Accept: text/html"
	eventually(t, "the ban known", func() bool { return e.do("GET", "/login", nil, from(banned), html).code == 403 })
	if r := e.do("GET", "/login", nil, from(banned), html); !strings.Contains(r.raw, "The lock ends at") || !strings.Contains(r.raw, "(in 1h30m0s)") &&
		!strings.Contains(r.raw, "(in 1h29m0s)") || !strings.Contains(r.raw, "/mss-login/static/style.css") {
		t.Errorf("the ban page: %d %.600s", r.code, r.raw)
	}
	for path, want := range map[string]int{
		"/mss-login/static/style.css":           200,
		"/favicon.ico":                          200,
		"/mss-login/static/../../api/queue":     403,
		"/mss-login/static/%2e%2e/%2e%2e/login": 403,
		"/api/queue":                            403,
		"/mss-login/api/me":                     403,
	} {
		if r := e.do("GET", path, nil, from(banned)); r.code != want {
			t.Errorf("banned GET %s: %d, want %d", path, r.code, want)
		}
	}
	if r := e.do("GET", "/favicon.ico", nil, from("192.0.2.77")); r.code != 200 || !strings.Contains(r.raw, "<svg") {
		t.Errorf("/favicon.ico signed out: %d %.80s", r.code, r.raw)
	}
}
