package authserver_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// clock is a test clock: the system time moved forward by what the test adds.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// jtiOf reads the session id out of a session JWT.
func jtiOf(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		ID string `json:"jti"`
	}
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" {
		t.Fatalf("claims %s: %v", raw, err)
	}
	return c.ID
}

// A session ends after session_idle_revoke_minutes without use — per session, sliding with
// each use, and a use seen by another replica (the database's last-use time) counts — and after
// access_token_expiration_hours whatever its use. Other sessions are not touched (the original
// swept every user's sessions).
func TestSessionIdleTimeout(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, db *store.Store) {
		clk := &clock{}
		e := startWith(t, db, func(c *config.Config) {
			c.SessionIdleRevokeMinutes = 30
			c.AccessTokenExpirationHours = 3
		}, authserver.Options{Now: clk.now})
		owner := e.bootstrap()
		e.do("POST", "/mss-login/api/users", map[string]string{"username": "erin", "password": "Erin-pass-1!", "role": "user"}, bearer(owner))
		busy := e.login("erin", "Erin-pass-1!", "192.0.2.90")
		quiet := e.login("erin", "Erin-pass-1!", "192.0.2.91")
		elsewhere := e.login("erin", "Erin-pass-1!", "192.0.2.92")
		ok := func(tok, what string, want int) {
			t.Helper()
			if r := e.do("GET", "/api/queue", nil, bearer(tok)); r.code != want {
				t.Fatalf("%s: GET /api/queue = %d, want %d (%s)", what, r.code, want, r.raw)
			}
		}
		for i := 1; i <= 3; i++ { // 60 min of use every 20 min: alive
			clk.advance(20 * time.Minute)
			ok(busy, "a session used every 20 minutes", 200)
			if i == 2 {
				// Another replica served this session a moment ago: it wrote the last use.
				if err := db.TouchSessions(context.Background(), map[string]time.Time{jtiOf(t, elsewhere): clk.now()}); err != nil {
					t.Fatal(err)
				}
			}
		}
		ok(quiet, "a session unused for 60 minutes", 401)
		ok(elsewhere, "a session used 20 minutes ago on another replica", 200)
		if r := e.do("GET", "/mss-login/api/sessions", nil, bearer(busy)); r.code != 200 {
			t.Fatalf("listing sessions: %d %s", r.code, r.raw)
		}

		// Use every 20 minutes does not outlive the expiry (3 h after login).
		for range 5 {
			clk.advance(20 * time.Minute)
			ok(busy, "a session used every 20 minutes, before its expiry", 200)
		}
		clk.advance(25 * time.Minute) // 3 h 05 after login
		ok(busy, "a session past access_token_expiration_hours", 401)
		e.login("erin", "Erin-pass-1!", "192.0.2.93")
	})
}

// An API token of the original MSS-Login (43 base64url characters, no prefix), imported by
// `mss-login admin import` as its SHA-256, keeps working — through the same lookup as new
// tokens — until it is revoked; an unknown one of that shape is refused.
func TestImportedLegacyAPIToken(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	e.bootstrap()
	ctx := context.Background()
	u := store.User{Username: "mia", PasswordHash: "$2b$04$abcdefghijklmnopqrstuuK2V8S4Eh5kW3WcS1p5dB3s9yPj9cC6", Role: "power"}
	if err := db.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	const raw = "q4-ZsN0bVx8m1tQe7yJk2LpR5wHcA9dUoF3gKi6jXnY"
	sum := sha256.Sum256([]byte(raw))
	tok := store.APIToken{TokenHash: hex.EncodeToString(sum[:]), UserID: u.ID, Label: "render farm"}
	if err := db.CreateAPIToken(ctx, &tok); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the imported token is accepted", func() bool {
		return e.do("GET", "/api/queue", nil, bearer(raw)).code == 200
	})
	if got := e.stub.Last().ComfyUser; got != "mia" {
		t.Fatalf("upstream saw comfy-user %q", got)
	}
	if r := e.do("GET", "/api/queue", nil, bearer("Zz9yXw8vU7tS6rQ5pO4nM3lK2jI1hG0fE-dC_bA9876")); r.code != 401 {
		t.Fatalf("an unknown token of the same shape: %d", r.code)
	}
	if err := db.RevokeAPIToken(ctx, tok.ID, u.ID); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the revoked token is refused", func() bool {
		return e.do("GET", "/api/queue", nil, bearer(raw)).code == 401
	})
}

// eventually polls ok every 50 ms for up to 5 s (the cache refreshes every 100 ms here).
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 5 s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Revoking from the account page: a token goes (audited), an unknown one is a 404, and a
// database failure is said, never answered with the redirect that means success.
func TestAccountPageRevoke(t *testing.T) {
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	owner := e.bootstrap()
	ctx := context.Background()
	u, err := db.UserByName(ctx, "owner")
	if err != nil {
		t.Fatal(err)
	}
	tok := store.APIToken{TokenHash: strings.Repeat("c", 64), UserID: u.ID, Label: "page"}
	if err := db.CreateAPIToken(ctx, &tok); err != nil {
		t.Fatal(err)
	}
	if r := e.do("POST", "/mss-login/account/tokens/"+tok.ID+"/revoke", nil, bearer(owner)); r.code != 303 {
		t.Fatalf("revoke: %d %s", r.code, r.raw)
	}
	if got, err := db.APITokenByHash(ctx, tok.TokenHash); err == nil && got.RevokedAt.IsZero() {
		t.Fatal("the token is not revoked")
	}
	if log, _ := db.AuditLog(ctx, 10); !slices.ContainsFunc(log, func(a store.AuditEvent) bool { return a.Action == "token.revoked" && a.Target == tok.ID }) {
		t.Errorf("no audit entry for the revoke: %+v", log)
	}
	if r := e.do("POST", "/mss-login/account/tokens/nope/revoke", nil, bearer(owner)); r.code != 404 {
		t.Fatalf("unknown token: %d", r.code)
	}
	db.Close() // the session is still known to the cache; the write fails
	if r := e.do("POST", "/mss-login/account/sessions/"+jtiOf(t, owner)+"/revoke", nil, bearer(owner)); r.code != 503 {
		t.Fatalf("revoke with the database gone: %d %s", r.code, r.raw)
	}
}
