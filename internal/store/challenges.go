package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
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

func scanChallenge(sc scanner) (Challenge, error) {
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
