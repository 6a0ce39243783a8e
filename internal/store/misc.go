package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mss-login/mss-login/internal/crypt"
)

// Challenge is a pending MFA step (login second factor, enrolment). ID is the SHA-256 (hex) of
// the random token handed to the client, so the table never holds a usable token.
type Challenge struct {
	ID         string
	UserID     string
	Purpose    string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	ConsumedAt time.Time
}

// CreateChallenge stores c; ID, UserID, Purpose and ExpiresAt are required.
func (s *Store) CreateChallenge(ctx context.Context, c Challenge) error {
	if len(c.ID) != 64 || c.UserID == "" || c.Purpose == "" || c.ExpiresAt.IsZero() {
		return errors.New("create challenge: id (64 hex digits), user, purpose and expiry are required")
	}
	if c.CreatedAt.IsZero() {
		c.CreatedAt = now()
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO mfa_challenges (id, user_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)`,
		c.ID, c.UserID, c.Purpose, ms(c.CreatedAt), ms(c.ExpiresAt))
	return s.wrap("create challenge", err)
}

const challengeColumns = `id, user_id, purpose, created_at, expires_at, consumed_at`

func scanChallenge(sc interface{ Scan(...any) error }) (Challenge, error) {
	var c Challenge
	var cr, ex, co sql.NullInt64
	if err := sc.Scan(&c.ID, &c.UserID, &c.Purpose, &cr, &ex, &co); err != nil {
		return Challenge{}, err
	}
	c.CreatedAt, c.ExpiresAt, c.ConsumedAt = fromMS(cr), fromMS(ex), fromMS(co)
	return c, nil
}

// ConsumeChallenge uses the challenge id once: the first caller before expiry gets it, every
// other caller (and any caller after expiry) gets ErrNotFound.
func (s *Store) ConsumeChallenge(ctx context.Context, id string, at time.Time) (Challenge, error) {
	var c Challenge
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE mfa_challenges SET consumed_at = ? WHERE id = ? AND consumed_at IS NULL AND expires_at > ?`,
			at.UnixMilli(), id, at.UnixMilli())
		if err != nil {
			return s.wrap("consume challenge", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return ErrNotFound
		}
		c, err = scanChallenge(s.queryRow(ctx, tx, `SELECT `+challengeColumns+` FROM mfa_challenges WHERE id = ?`, id))
		return s.wrap("consume challenge", err)
	})
	return c, err
}

// PeekChallenge returns a live (unexpired, unused) challenge without using it: enrolment shows a
// new secret first and uses the challenge up when the code is confirmed.
func (s *Store) PeekChallenge(ctx context.Context, id string, at time.Time) (Challenge, error) {
	c, err := scanChallenge(s.queryRow(ctx, s.db, `SELECT `+challengeColumns+` FROM mfa_challenges
		WHERE id = ? AND consumed_at IS NULL AND expires_at > ?`, id, at.UnixMilli()))
	return c, s.wrap("read challenge", err)
}

// PurgeChallenges deletes challenges that expired or were consumed before t.
func (s *Store) PurgeChallenges(ctx context.Context, t time.Time) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM mfa_challenges WHERE expires_at <= ? OR consumed_at <= ?`, t.UnixMilli(), t.UnixMilli())
	return s.wrap("purge challenges", err)
}

// Setting returns an app setting stored in plain text; ok is false when unset.
func (s *Store) Setting(ctx context.Context, name string) (value string, ok bool, err error) {
	var enc bool
	err = s.queryRow(ctx, s.db, `SELECT value, encrypted FROM app_settings WHERE name = ?`, name).Scan(&value, &enc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, s.wrap("read setting", err)
	}
	if enc {
		return "", false, fmt.Errorf("setting %q is encrypted: read it with SecretSetting", name)
	}
	return value, true, nil
}

// SetSetting stores an app setting in plain text.
func (s *Store) SetSetting(ctx context.Context, name, value string) error {
	return s.putSetting(ctx, name, value, false)
}

// SecretSetting returns an app setting stored encrypted (S3 keys, tokens); ok is false when unset.
func (s *Store) SecretSetting(ctx context.Context, name string) (value string, ok bool, err error) {
	var sealed string
	var enc bool
	err = s.queryRow(ctx, s.db, `SELECT value, encrypted FROM app_settings WHERE name = ?`, name).Scan(&sealed, &enc)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, s.wrap("read setting", err)
	}
	if !enc {
		return "", false, fmt.Errorf("setting %q is not encrypted: read it with Setting", name)
	}
	if s.fields == nil {
		return "", false, ErrNoSecret
	}
	v, err := s.fields.Open(sealed, settingContext(name))
	return v, err == nil, err
}

// SetSecretSetting stores an app setting encrypted with the field key.
func (s *Store) SetSecretSetting(ctx context.Context, name, value string) error {
	if s.fields == nil {
		return ErrNoSecret
	}
	sealed, err := s.fields.Seal(value, settingContext(name))
	if err != nil {
		return err
	}
	return s.putSetting(ctx, name, sealed, true)
}

func settingContext(name string) string { return "app_settings:" + name }

func (s *Store) putSetting(ctx context.Context, name, value string, encrypted bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		t := now().UnixMilli()
		res, err := s.exec(ctx, tx, `UPDATE app_settings SET value = ?, encrypted = ?, updated_at = ? WHERE name = ?`, value, encrypted, t, name)
		if err != nil {
			return s.wrap("write setting", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = s.exec(ctx, tx, `INSERT INTO app_settings (name, value, encrypted, updated_at) VALUES (?, ?, ?, ?)`, name, value, encrypted, t)
		return s.wrap("write setting", err)
	}, TopicSettings)
}

// reencryptFields re-seals every encrypted field from the old secret to the new one, in one
// transaction: all of them change or none.
func (s *Store) reencryptFields(ctx context.Context, oldSecret, newSecret string) error {
	oldF, err := crypt.NewFields(oldSecret)
	if err != nil {
		return err
	}
	newF, err := crypt.NewFields(newSecret)
	if err != nil {
		return err
	}
	type field struct{ key, sealed, ctx string }
	collect := func(q string, ctxOf func(string) string) ([]field, error) {
		rows, err := s.query(ctx, s.db, q)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []field
		for rows.Next() {
			var f field
			if err := rows.Scan(&f.key, &f.sealed); err != nil {
				return nil, err
			}
			f.ctx = ctxOf(f.key)
			out = append(out, f)
		}
		return out, rows.Err()
	}
	users, err := collect(`SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL AND totp_secret <> ''`, totpContext)
	if err != nil {
		return s.wrap("rekey", err)
	}
	settings, err := collect(`SELECT name, value FROM app_settings WHERE encrypted = TRUE`, settingContext)
	if err != nil {
		return s.wrap("rekey", err)
	}
	reseal := func(f field) (string, error) {
		plain, err := oldF.Open(f.sealed, f.ctx)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.ctx, err)
		}
		return newF.Seal(plain, f.ctx)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, f := range users {
			v, err := reseal(f)
			if err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx, `UPDATE users SET totp_secret = ? WHERE id = ?`, v, f.key); err != nil {
				return s.wrap("rekey", err)
			}
		}
		for _, f := range settings {
			v, err := reseal(f)
			if err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx, `UPDATE app_settings SET value = ? WHERE name = ?`, v, f.key); err != nil {
				return s.wrap("rekey", err)
			}
		}
		return nil
	}, TopicUsers, TopicSettings)
}

// ReencryptFields re-seals the encrypted fields (TOTP secrets, secret settings) for a new
// SECRET_KEY. PostgreSQL and MySQL need only this to change the secret; SQLite files go through
// RekeySQLite, which calls it too.
func (s *Store) ReencryptFields(ctx context.Context, newSecret string) error {
	if s.opts.SecretKey == "" {
		return ErrNoSecret
	}
	return s.reencryptFields(ctx, s.opts.SecretKey, newSecret)
}

// Versions returns every change counter: a process that caches a topic reloads it when its
// counter moved. One indexed read of a handful of rows.
func (s *Store) Versions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.query(ctx, s.db, `SELECT topic, version FROM change_counters`)
	if err != nil {
		return nil, s.wrap("read change counters", err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(Topics))
	for rows.Next() {
		var t string
		var v int64
		if err := rows.Scan(&t, &v); err != nil {
			return nil, s.wrap("read change counters", err)
		}
		out[t] = v
	}
	return out, s.wrap("read change counters", rows.Err())
}
