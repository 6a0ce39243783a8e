// Package legacytest writes databases shaped like the original MSS-Login's, for the import
// tests: the tables and column types of its schema (docs/import.md), filled the way it fills
// them — bcrypt "$2b$" hashes, groups as JSON lists, Fernet-encrypted TOTP secrets under a key
// HKDF'd from SECRET_KEY, SHA-256 token and backup-code hashes, ISO times, Unix-second bans.
package legacytest

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/ncruces/go-sqlite3/driver"
	"golang.org/x/crypto/bcrypt"
)

// Schema is the original's tables (utils/db_schema.py), as far as the import reads them.
const Schema = `
CREATE TABLE users (user_id TEXT PRIMARY KEY, username TEXT UNIQUE NOT NULL, password_hash TEXT,
  admin INTEGER DEFAULT 0, groups TEXT DEFAULT '["user"]', sfw_check INTEGER DEFAULT 1,
  mfa_enabled INTEGER DEFAULT 0, totp_secret_encrypted TEXT, backup_code_hash TEXT, backup_code_used INTEGER DEFAULT 0);
CREATE TABLE api_tokens (token_hash TEXT PRIMARY KEY, user_id TEXT, username TEXT, expires_iso TEXT, label TEXT,
  created_at_iso TEXT, last_used_at_iso TEXT);
CREATE TABLE session_tokens (jti TEXT PRIMARY KEY, user_id TEXT, username TEXT, created_at_iso TEXT,
  last_used_at_iso TEXT, exp_at_iso TEXT, revoked INTEGER DEFAULT 0);
CREATE TABLE ip_blacklist (ip TEXT PRIMARY KEY, expires_at INTEGER);
CREATE TABLE ip_whitelist (entry TEXT PRIMARY KEY);
CREATE TABLE locked_devices (device_id TEXT PRIMARY KEY);
CREATE TABLE app_settings (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO app_settings VALUES ('schema_version', '1');
`

// Fixture is what Write put into the database, in clear.
type Fixture struct {
	Path string
	// Passwords by username.
	Passwords map[string]string
	// TOTPSecret of "mia", who has MFA; BackupCode her unused backup code.
	TOTPSecret, BackupCode string
	// Token is mia's raw API token (the original's: 43 base64url characters, no prefix);
	// ExpiredToken one that expired.
	Token, ExpiredToken string
}

// Write creates dir/mss_login_data.db like the original with secret as its SECRET_KEY:
//
//	boss   ["owner","admin"], admin      mia   ["power"], MFA + backup code + a token
//	ana    ["artists"] (a custom role)   guest ["guest"] (the original's built-in)
//	bad name "x y"
//
// plus an active, an expired and a permanent ban, two allow-list entries (one invalid) and a
// locked device.
func Write(t testing.TB, dir, secret string) Fixture {
	t.Helper()
	f := Fixture{
		Path:         filepath.Join(dir, "mss_login_data.db"),
		Passwords:    map[string]string{"boss": "Boss-pass-1!", "mia": "Mia-pass-22?", "ana": "Ana-pass-333#", "guest": "unused-guest-9!"},
		TOTPSecret:   "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP",
		BackupCode:   "1A2B-3C4D-5E6F-7A8B",
		Token:        "q4-ZsN0bVx8m1tQe7yJk2LpR5wHcA9dUoF3gKi6jXnY",
		ExpiredToken: "Zz9yXw8vU7tS6rQ5pO4nM3lK2jI1hG0fE-dC_bA9876",
	}
	db, err := driver.Open("file:" + f.Path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	exec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.Exec(q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	exec(Schema)
	hash := func(user string) string {
		h, err := bcrypt.GenerateFromPassword([]byte(f.Passwords[user]), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		return "$2b$" + strings.TrimPrefix(string(h), "$2a$") // Python's bcrypt writes $2b$
	}
	sealed := fernetSeal(t, secret, f.TOTPSecret)
	exec(`INSERT INTO users (user_id, username, password_hash, admin, groups) VALUES ('u-boss', 'boss', ?, 1, '["owner","admin"]')`, hash("boss"))
	exec(`INSERT INTO users (user_id, username, password_hash, admin, groups, mfa_enabled, totp_secret_encrypted, backup_code_hash, backup_code_used)
		VALUES ('u-mia', 'mia', ?, 0, '["power"]', 1, ?, ?, 0)`, hash("mia"), sealed, SHA256Hex(strings.ReplaceAll(f.BackupCode, "-", "")))
	exec(`INSERT INTO users (user_id, username, password_hash, admin, groups) VALUES ('u-ana', 'ana', ?, 0, '["Artists"]')`, hash("ana"))
	exec(`INSERT INTO users (user_id, username, password_hash, admin, groups) VALUES ('u-guest', 'guest', ?, 0, '["guest"]')`, hash("guest"))
	exec(`INSERT INTO users (user_id, username, password_hash, groups) VALUES ('u-bad', 'x y', ?, '["user"]')`, hash("ana"))
	now := time.Now().UTC()
	iso := func(t time.Time) string { return t.Format("2006-01-02T15:04:05.000000+00:00") }
	exec(`INSERT INTO api_tokens VALUES (?, 'u-mia', 'mia', '9999-12-31T23:59:59+00:00', 'render farm', ?, NULL)`, SHA256Hex(f.Token), iso(now.Add(-48*time.Hour)))
	exec(`INSERT INTO api_tokens VALUES (?, 'u-mia', 'mia', ?, 'old script', ?, NULL)`, SHA256Hex(f.ExpiredToken), iso(now.Add(-time.Hour)), iso(now.Add(-72*time.Hour)))
	exec(`INSERT INTO session_tokens VALUES ('jti1', 'u-mia', 'mia', ?, ?, NULL, 0)`, iso(now), iso(now))
	exec(`INSERT INTO ip_blacklist VALUES ('203.0.113.66', ?), ('203.0.113.67', ?), ('2001:db8::66', NULL)`,
		now.Add(5*time.Hour).Unix(), now.Add(-time.Hour).Unix())
	exec(`INSERT INTO ip_whitelist VALUES ('10.20.0.0/16'), ('192.0.2.7'), ('not-an-ip')`)
	exec(`INSERT INTO locked_devices VALUES ('device-abc')`)
	return f
}

// SHA256Hex is the original's hash of tokens and (uppercase, dash-free) backup codes.
func SHA256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// fernetSeal encrypts like the original: Fernet with HKDF-SHA256(SECRET_KEY, no salt, info
// "mss-login-users-totp-v1") as the key.
func fernetSeal(t testing.TB, secret, plain string) string {
	t.Helper()
	raw, err := hkdf.Key(sha256.New, []byte(secret), nil, "mss-login-users-totp-v1", 32)
	if err != nil {
		t.Fatal(err)
	}
	k, err := fernet.DecodeKey(base64.URLEncoding.EncodeToString(raw))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := fernet.EncryptAndSign([]byte(plain), k)
	if err != nil {
		t.Fatal(err)
	}
	return string(tok)
}

// Exec runs statements on an original database (to age or damage it).
func Exec(t testing.TB, path, stmts string) {
	t.Helper()
	db, err := driver.Open("file:" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(stmts); err != nil {
		t.Fatalf("%s: %v", stmts, err)
	}
}
