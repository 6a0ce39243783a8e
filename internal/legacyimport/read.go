// Package legacyimport reads the users database of the original ComfyUI node "MSS-Login" (an
// unencrypted SQLite file) and writes what carries over into an mss-login database: users with
// their bcrypt hashes, roles, the owner, MFA secrets and the unused backup code, API tokens, IP
// bans, allow-list entries and locked devices. Sessions do not carry over: users log in again.
package legacyimport

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/fernet/fernet-go"
	"github.com/ncruces/go-sqlite3/driver"
)

// User is one row of the original's users table.
type User struct {
	ID, Username, PasswordHash string
	Admin                      bool
	Groups                     []string
	MFAEnabled                 bool
	// TOTPSecret is the decrypted secret ("" when none).
	TOTPSecret string
	// BackupCodeHash is SHA-256 (hex) of the unused backup code ("" when none or used); the
	// same hash mss-login keeps, so the code keeps working.
	BackupCodeHash string
}

// mfaWithoutSecret: the original says MFA is on but holds no secret; such a user is not
// imported (importing them without MFA would weaken their account).
func (u User) mfaWithoutSecret() bool { return u.MFAEnabled && u.TOTPSecret == "" }

// Token is one API token; Hash is the SHA-256 (hex) of the raw token, as mss-login stores it.
type Token struct {
	// Username is the original's copy of the owner's name ("" in older files); it must match
	// the user the token is given to.
	Hash, UserID, Username, Label string
	CreatedAt, ExpiresAt          time.Time // ExpiresAt zero: never
}

// Ban is one ip_blacklist row; ExpiresAt zero: permanent.
type Ban struct {
	IP        string
	ExpiresAt time.Time
}

// Dump is everything read from an original database.
type Dump struct {
	Users   []User
	Tokens  []Token
	Bans    []Ban
	Allow   []string // ip_whitelist entries (IPs or CIDRs)
	Devices []string // locked_devices
	// Skipped are rows read but left out, each with the reason (an expiry that does not parse).
	Skipped []string
}

// ErrEncrypted: the file is not plain SQLite (the original's SQLCipher encryption).
var ErrEncrypted = errors.New("not a plain SQLite file: the original encrypts it with SQLCipher unless users_db.encryption_level is empty; " +
	"export a decrypted copy with the original's own SQLCipher first (docs/import.md)")

// Read opens path read-only and reads every table that carries over. sourceSecret is the
// original's SECRET_KEY, needed only to decrypt MFA secrets (Fernet); a secret that does not
// decrypt is an error naming the user, never the secret.
func Read(ctx context.Context, path, sourceSecret string) (*Dump, error) {
	if err := checkHeader(path); err != nil {
		return nil, err
	}
	db, err := driver.Open("file:" + (&url.URL{Path: path}).EscapedPath() + "?mode=ro")
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	defer db.Close()
	r := reader{ctx: ctx, db: db}
	d := &Dump{}
	if d.Users, err = r.users(sourceSecret); err != nil {
		return nil, err
	}
	if d.Tokens, err = r.tokens(d); err != nil {
		return nil, err
	}
	if d.Bans, err = r.bans(d); err != nil {
		return nil, err
	}
	if d.Allow, err = r.strings("ip_whitelist", "entry"); err != nil {
		return nil, err
	}
	if d.Devices, err = r.strings("locked_devices", "device_id"); err != nil {
		return nil, err
	}
	return d, nil
}

func checkHeader(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	head := make([]byte, 16)
	if _, err := io.ReadFull(f, head); err != nil {
		return fmt.Errorf("%s: %w", path, ErrEncrypted)
	}
	if !bytes.Equal(head, []byte("SQLite format 3\x00")) {
		return fmt.Errorf("%s: %w", path, ErrEncrypted)
	}
	return nil
}

type reader struct {
	ctx context.Context
	db  *sql.DB
}

// columns lists a table's columns (none when the table does not exist): the original creates
// tables lazily and adds columns over time, so an older file lacks some.
func (r reader) columns(table string) (map[string]bool, error) {
	rows, err := r.db.QueryContext(r.ctx, `SELECT name FROM pragma_table_info(?)`, table)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		cols[n] = true
	}
	return cols, rows.Err()
}

// selectCols returns "a, b, NULL, …" for the wanted columns, NULL for the missing ones.
func selectCols(have map[string]bool, want ...string) string {
	out := make([]string, len(want))
	for i, c := range want {
		out[i] = "NULL"
		if have[c] {
			out[i] = `"` + c + `"`
		}
	}
	return strings.Join(out, ", ")
}

func (r reader) users(secret string) ([]User, error) {
	cols, err := r.columns("users")
	if err != nil || len(cols) == 0 {
		return nil, err
	}
	if !cols["username"] || !cols["password_hash"] {
		return nil, errors.New("users table without username and password_hash: not an MSS-Login database")
	}
	rows, err := r.db.QueryContext(r.ctx, `SELECT `+selectCols(cols, "user_id", "username", "password_hash", "admin", "groups",
		"mfa_enabled", "totp_secret_encrypted", "backup_code_hash", "backup_code_used")+` FROM users ORDER BY username`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rows.Close()
	var key *fernet.Key
	var out []User
	var bad []string
	for rows.Next() {
		var id, name, hash, groups, totp, backup sql.NullString
		var admin, mfa, used sql.NullInt64
		if err := rows.Scan(&id, &name, &hash, &admin, &groups, &mfa, &totp, &backup, &used); err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		u := User{ID: id.String, Username: name.String, PasswordHash: hash.String, Admin: admin.Int64 != 0,
			MFAEnabled: mfa.Int64 != 0}
		if groups.String != "" {
			if err := json.Unmarshal([]byte(groups.String), &u.Groups); err != nil {
				return nil, fmt.Errorf("users: %s: groups is not a JSON list", u.Username)
			}
		}
		if backup.String != "" && used.Int64 == 0 {
			u.BackupCodeHash = strings.ToLower(backup.String)
		}
		if totp.String != "" {
			if key == nil {
				if key, err = fieldKey(secret); err != nil {
					return nil, err
				}
			}
			plain := fernet.VerifyAndDecrypt([]byte(totp.String), 0, []*fernet.Key{key})
			if plain == nil {
				bad = append(bad, u.Username)
				continue
			}
			u.TOTPSecret = string(plain)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("the MFA secrets of %s do not decrypt with the given SECRET_KEY: give the original's (--source-secret-key-env)",
			strings.Join(bad, ", "))
	}
	return out, nil
}

// fieldKey is the original's Fernet key: HKDF-SHA256(SECRET_KEY, no salt, info
// "mss-login-users-totp-v1"), 32 bytes (the first half signs, the second encrypts).
func fieldKey(secret string) (*fernet.Key, error) {
	if secret == "" {
		return nil, errors.New("MFA secrets are encrypted with the original's SECRET_KEY, and none was given")
	}
	raw, err := hkdf.Key(sha256.New, []byte(secret), nil, "mss-login-users-totp-v1", 32)
	if err != nil {
		return nil, err
	}
	return fernet.DecodeKey(base64.URLEncoding.EncodeToString(raw))
}

func (r reader) tokens(d *Dump) ([]Token, error) {
	cols, err := r.columns("api_tokens")
	if err != nil || len(cols) == 0 {
		return nil, err
	}
	rows, err := r.db.QueryContext(r.ctx, `SELECT `+selectCols(cols, "token_hash", "user_id", "username", "label", "created_at_iso", "expires_iso")+` FROM api_tokens`)
	if err != nil {
		return nil, fmt.Errorf("api_tokens: %w", err)
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		var hash, user, name, label, created, expires sql.NullString
		if err := rows.Scan(&hash, &user, &name, &label, &created, &expires); err != nil {
			return nil, fmt.Errorf("api_tokens: %w", err)
		}
		t := Token{Hash: strings.ToLower(hash.String), UserID: user.String, Username: name.String, Label: label.String,
			CreatedAt: parseTime(created.String)}
		switch exp := parseTime(expires.String); {
		case strings.HasPrefix(strings.TrimSpace(expires.String), "9999"): // the original's "never"
		case exp.IsZero():
			d.Skipped = append(d.Skipped, fmt.Sprintf("API token %q: expiry %q does not parse", t.Label, expires.String))
			continue // fail closed
		default:
			t.ExpiresAt = exp
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

func (r reader) bans(d *Dump) ([]Ban, error) {
	cols, err := r.columns("ip_blacklist")
	if err != nil || len(cols) == 0 {
		return nil, err
	}
	rows, err := r.db.QueryContext(r.ctx, `SELECT `+selectCols(cols, "ip", "expires_at")+` FROM ip_blacklist`)
	if err != nil {
		return nil, fmt.Errorf("ip_blacklist: %w", err)
	}
	defer rows.Close()
	var out []Ban
	for rows.Next() {
		var ip, exp sql.NullString
		if err := rows.Scan(&ip, &exp); err != nil {
			return nil, fmt.Errorf("ip_blacklist: %w", err)
		}
		b := Ban{IP: ip.String}
		if exp.Valid && exp.String != "" {
			if b.ExpiresAt = parseTime(exp.String); b.ExpiresAt.IsZero() {
				d.Skipped = append(d.Skipped, fmt.Sprintf("ban of %q: expiry %q does not parse", b.IP, exp.String))
				continue
			}
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func (r reader) strings(table, col string) ([]string, error) {
	cols, err := r.columns(table)
	if err != nil || !cols[col] {
		return nil, err
	}
	rows, err := r.db.QueryContext(r.ctx, `SELECT "`+col+`" FROM `+table+` ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", table, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var v sql.NullString
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		if v.String != "" {
			out = append(out, v.String)
		}
	}
	return out, rows.Err()
}

// parseTime reads the original's times: ISO 8601 strings (with an offset or naive UTC) or Unix
// seconds; zero when it is none of these.
func parseTime(s string) time.Time {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(int64(n), 0).UTC()
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999", "2006-01-02 15:04:05.999999-07:00", "2006-01-02 15:04:05.999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}
