package store

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mss-login/mss-login/internal/crypt"
)

// ReencryptFields re-seals the encrypted fields (TOTP secrets, secret settings) for a new
// SECRET_KEY. PostgreSQL and MySQL need only this to change the secret; SQLite files go through
// RekeySQLite, which calls it too.
func (s *Store) ReencryptFields(ctx context.Context, newSecret string) error {
	if s.opts.SecretKey == "" {
		return ErrNoSecret
	}
	return s.reencryptFields(ctx, s.opts.SecretKey, newSecret)
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
	type column struct {
		read, write string
		ctxOf       func(string) string
		fields      []field
	}
	columns := []*column{
		{read: `SELECT id, totp_secret FROM users WHERE totp_secret IS NOT NULL AND totp_secret <> ''`,
			write: `UPDATE users SET totp_secret = ? WHERE id = ?`, ctxOf: totpContext},
		{read: `SELECT name, value FROM app_settings WHERE encrypted = TRUE`,
			write: `UPDATE app_settings SET value = ? WHERE name = ?`, ctxOf: settingContext},
	}
	for _, c := range columns {
		if c.fields, err = list(ctx, s, "rekey", func(sc scanner) (field, error) {
			var f field
			err := sc.Scan(&f.key, &f.sealed)
			f.ctx = c.ctxOf(f.key)
			return f, err
		}, c.read); err != nil {
			return err
		}
	}
	reseal := func(f field) (string, error) {
		plain, err := oldF.Open(f.sealed, f.ctx)
		if err != nil {
			return "", fmt.Errorf("%s: %w", f.ctx, err)
		}
		return newF.Seal(plain, f.ctx)
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		for _, c := range columns {
			for _, f := range c.fields {
				v, err := reseal(f)
				if err != nil {
					return err
				}
				if _, err := s.exec(ctx, tx, c.write, v, f.key); err != nil {
					return s.wrap("rekey", err)
				}
			}
		}
		return nil
	}, TopicUsers, TopicSettings)
}
