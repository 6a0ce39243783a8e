package authserver_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/bcrypt"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func TestNewsFeed(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	off := start(t, db, nil)
	if r := off.do("GET", "/mss-login/api/news/feed.xml", nil); r.code != 404 {
		t.Fatalf("news while off: %d", r.code)
	}
	e := start(t, db, func(c *config.Config) { c.ExperimentalFeatures, c.Experimental.News = true, true })
	os.WriteFile(filepath.Join(e.dataDir, "news.md"), []byte("## 2026-11-20 Maintenance <tonight>\nRestart at 22:00 & back soon.\n"), 0o600)
	r := e.do("GET", "/api/mss-login/api/news/feed.xml", nil)
	if r.code != 200 || !strings.Contains(r.raw, "<title>Maintenance &lt;tonight&gt;</title>") ||
		!strings.Contains(r.raw, "Restart at 22:00 &amp; back soon.") || !strings.Contains(r.raw, "Fri, 20 Nov 2026 00:00:00 +0000") ||
		!strings.Contains(r.raw, `<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">`) {
		t.Fatalf("feed: %d\n%s", r.code, r.raw)
	}
	e.bootstrap()
	if page := e.do("GET", "/login", nil, "Accept: text/html"); !strings.Contains(page.raw, "Maintenance &lt;tonight&gt;") {
		t.Fatal("the login page does not show the news")
	}
}

func TestChangePassword(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "dave", "password": "Dave-pass-1!", "role": "user"}, bearer(owner))
	first := e.login("dave", "Dave-pass-1!", "192.0.2.80")
	second := e.login("dave", "Dave-pass-1!", "192.0.2.81")
	if r := e.do("POST", "/mss-login/api/password", map[string]string{"current_password": "nope-1!", "new_password": "Dave-new-2!"},
		bearer(first), from("192.0.2.80")); r.code != 401 {
		t.Fatalf("wrong current password: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/mss-login/api/password", map[string]string{"current_password": "Dave-pass-1!", "new_password": "short"},
		bearer(first), from("192.0.2.80")); r.code != 400 || !strings.Contains(r.raw, "new_password") {
		t.Fatalf("weak new password: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/mss-login/api/password", map[string]string{"current_password": "Dave-pass-1!", "new_password": "Dave-new-2!"},
		bearer(first), from("192.0.2.80")); r.code != 200 {
		t.Fatalf("change: %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/api/queue", nil, bearer(second)); r.code != 401 {
		t.Fatalf("the other session survived a password change: %d", r.code)
	}
	if r := e.do("GET", "/api/queue", nil, bearer(first)); r.code != 200 {
		t.Fatalf("the current session ended: %d", r.code)
	}
	e.login("dave", "Dave-new-2!", "192.0.2.82")
}

// The original's scripted token flow: username and password, no session; with MFA, a code too.
func TestGenerateTokenWithPassword(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), withMFA)
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "erin", "password": "Erin-pass-1!", "role": "power"}, bearer(owner))
	if r := e.do("POST", "/mss-login/generate_token", map[string]string{"username": "erin", "password": "wrong-1!"}, from("192.0.2.90")); r.code != 401 {
		t.Fatalf("wrong password: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/generate_token", map[string]string{"username": "nobody", "password": "x"}, from("192.0.2.90")); r.code != 401 {
		t.Fatalf("unknown user: %d %s", r.code, r.raw)
	}
	r := e.do("POST", "/mss-login/generate_token", map[string]any{"username": "erin", "password": "Erin-pass-1!", "label": "krita"}, from("192.0.2.91"))
	tok, _ := r.body["token"].(string)
	if r.code != 201 || !strings.HasPrefix(tok, "mssl_") {
		t.Fatalf("token with password: %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/api/queue", nil, bearer(tok)); r.code != 200 {
		t.Fatalf("token use: %d", r.code)
	}
	// The owner has MFA on: the password alone is not enough.
	ownerLogin := e.do("POST", "/login", map[string]string{"username": "owner", "password": ownerPassword}, from("192.0.2.92"))
	enrol := ownerLogin.body["mfa_temp_token"].(string)
	secret := e.do("POST", "/mss-login/api/mfa/setup", map[string]string{"mfa_temp_token": enrol}, from("192.0.2.92")).body["secret"].(string)
	code, _ := totp.GenerateCode(secret, time.Now())
	e.do("POST", "/mss-login/api/mfa/verify-setup", map[string]string{"mfa_temp_token": enrol, "code": code}, from("192.0.2.92"))
	if r := e.do("POST", "/mss-login/generate_token", map[string]string{"username": "owner", "password": ownerPassword}, from("192.0.2.93")); r.code != 401 || r.body["mfa_required"] != true {
		t.Fatalf("token for an MFA account without a code: %d %s", r.code, r.raw)
	}
}

// A socket closes within a second when its role loses the permission or is deleted, and when
// its token is revoked.
func TestSocketsFollowPermissions(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	owner := e.bootstrap()
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "fay", "password": "Fay-pass-1!", "role": "power"}, bearer(owner))
	fay := e.login("fay", "Fay-pass-1!", "192.0.2.95")
	tok := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "ws"}, bearer(fay)).body["token"].(string)
	open := func(cred string) (*websocket.Conn, context.Context) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		t.Cleanup(cancel)
		c, _, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?token="+cred, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
		return c, ctx
	}
	closedWithin := func(c *websocket.Conn, ctx context.Context, d time.Duration) bool {
		start := time.Now()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return time.Since(start) <= d
			}
		}
	}
	byToken, ctx1 := open(tok)
	if r := e.do("DELETE", "/mss-login/api/tokens/"+e.do("GET", "/mss-login/api/tokens", nil, bearer(fay)).body["tokens"].([]any)[0].(map[string]any)["id"].(string), nil, bearer(fay)); r.code != 200 {
		t.Fatalf("revoke: %d", r.code)
	}
	if !closedWithin(byToken, ctx1, time.Second) {
		t.Fatal("the socket of a revoked token stayed open over a second")
	}
	bySession, ctx2 := open(fay)
	power, _ := e.db.Role(context.Background(), "power")
	power.Permissions["can_access_api"] = false
	if err := e.db.PutRole(context.Background(), power.Role, "ComfyRole/team/power"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(bySession, ctx2, 1500*time.Millisecond) {
		t.Fatal("the socket stayed open after its role lost can_access_api")
	}
	// A deleted role grants nothing: not to new requests, not to open sockets.
	painter := roles.Role{Name: "painter", Permissions: map[string]bool{roles.CanAccessAPI: true}}
	if err := e.db.PutRole(context.Background(), painter, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a user of the new role is created", func() bool {
		return e.do("POST", "/mss-login/api/users", map[string]string{"username": "gus", "password": "Gus-pass-1!", "role": "painter"},
			bearer(owner)).code == 201
	})
	byRole, ctx3 := open(e.login("gus", "Gus-pass-1!", "192.0.2.96"))
	if err := e.db.DeleteRole(context.Background(), "painter"); err != nil {
		t.Fatal(err)
	}
	if !closedWithin(byRole, ctx3, 1500*time.Millisecond) {
		t.Fatal("the socket stayed open after its role was deleted")
	}
}

// Guest login (allow_guest_jwt) gives the guest role's permissions; a password hash made by the
// original (bcrypt) logs in and is replaced by argon2id.
func TestGuestAndLegacyHash(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, func(c *config.Config) { c.AllowGuestJWT = true })
	e.bootstrap()
	r := e.do("POST", "/login", map[string]string{"guest_login": "true"}, from("192.0.2.120"))
	guest, _ := r.body["jwt_token"].(string)
	if r.code != 200 || guest == "" {
		t.Fatalf("guest login: %d %s", r.code, r.raw)
	}
	if r := e.do("POST", "/api/prompt", map[string]any{}, bearer(guest)); r.code != 200 {
		t.Fatalf("guest may run (the original's default): %d", r.code)
	}
	if r := e.do("POST", "/upload/image", map[string]any{}, bearer(guest)); r.code != 403 || r.body["code"] != "UPLOAD_DENIED" {
		t.Fatalf("guest upload: %d %s", r.code, r.raw)
	}
	off := start(t, db, nil)
	if r := off.do("POST", "/login", map[string]string{"guest_login": "true"}, from("192.0.2.121")); r.code != 403 {
		t.Fatalf("guest login while disabled: %d", r.code)
	}

	legacy, _ := bcrypt.GenerateFromPassword([]byte("Legacy-pass-1!"), bcrypt.MinCost)
	u := store.User{Username: "oldtimer", Role: "user", PasswordHash: string(legacy)}
	if err := db.CreateUser(context.Background(), &u); err != nil {
		t.Fatal(err)
	}
	e.login("oldtimer", "Legacy-pass-1!", "192.0.2.122")
	got, _ := db.UserByName(context.Background(), "oldtimer")
	if !strings.HasPrefix(got.PasswordHash, "$argon2id$") {
		t.Fatalf("the original's bcrypt hash was not replaced: %.7s…", got.PasswordHash)
	}
	// The same password hashed anew is no password change (the operator compares this time).
	if !got.PasswordChangedAt.Equal(u.PasswordChangedAt) {
		t.Errorf("the re-hash moved password_changed_at from %v to %v", u.PasswordChangedAt, got.PasswordChangedAt)
	}
	e.login("oldtimer", "Legacy-pass-1!", "192.0.2.123")
}

// ComfyUI's --multi-user knows users by id ("<name>_<uuid>") and refuses others: the auth
// server finds or creates the id through ComfyUI's /users and sends that as comfy-user.
func TestComfyMultiUserIDs(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	e.stub.MultiUser = true
	owner := e.bootstrap()
	if r := e.do("GET", "/api/userdata/comfy.settings.json", nil, bearer(owner)); r.code != 200 {
		t.Fatalf("userdata through --multi-user: %d %s", r.code, r.raw)
	}
	id := e.stub.Last().ComfyUser
	if users := e.stub.Users(); users[id] != "owner" || len(users) != 1 {
		t.Fatalf("comfy-user %q, ComfyUI users %v", id, users)
	}
	// Known now: no second user is created, the same id is sent.
	e.do("GET", "/api/userdata/x.json", nil, bearer(owner))
	if e.stub.Last().ComfyUser != id || len(e.stub.Users()) != 1 {
		t.Fatalf("second request: comfy-user %q, users %v", e.stub.Last().ComfyUser, e.stub.Users())
	}
	// Another replica (a second auth server on the same database and ComfyUI) finds the
	// existing id instead of creating a second user.
	e2 := start(t, e.db, func(c *config.Config) { c.UpstreamURL = e.upstream })
	if r := e2.do("GET", "/api/userdata/y.json", nil, bearer(owner)); r.code != 200 {
		t.Fatalf("second replica: %d %s", r.code, r.raw)
	}
	if e.stub.Last().ComfyUser != id || len(e.stub.Users()) != 1 {
		t.Fatalf("second replica: comfy-user %q, users %v", e.stub.Last().ComfyUser, e.stub.Users())
	}
}

// When ComfyUI's /users does not answer as expected, the username is sent and the lookup is not
// repeated for every request (one upstream call, one warning, per 30 s).
func TestComfyUserLookupFailureIsNotRepeated(t *testing.T) {
	var usersCalls atomic.Int64
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/users" {
			usersCalls.Add(1)
			_, _ = w.Write([]byte("not json"))
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer broken.Close()
	e := start(t, testenv.Open(t, store.SQLite), func(c *config.Config) { c.UpstreamURL = broken.URL })
	owner := e.bootstrap()
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.do("GET", "/api/queue", nil, bearer(owner)); r.code != 200 {
				t.Errorf("request during a failing lookup: %d", r.code)
			}
		}()
	}
	wg.Wait()
	if n := usersCalls.Load(); n != 1 {
		t.Fatalf("ComfyUI's /users was called %d times for 20 requests, want 1", n)
	}
	if n := strings.Count(e.logs.String(), "--multi-user id failed"); n != 1 {
		t.Fatalf("%d warnings, want 1", n)
	}
}
