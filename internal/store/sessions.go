package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Session is a login session, identified by its JWT id.
type Session struct {
	JTI        string
	UserID     string
	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time // zero = no absolute expiry
	RevokedAt  time.Time
	ClientIP   string
	UserAgent  string
}

// CreateSession stores a new session.
func (s *Store) CreateSession(ctx context.Context, x *Session) error {
	if x.JTI == "" || x.UserID == "" {
		return errors.New("create session: jti and user are required")
	}
	if x.CreatedAt.IsZero() {
		x.CreatedAt = now()
	}
	if x.LastUsedAt.IsZero() {
		x.LastUsedAt = x.CreatedAt
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO sessions (jti, user_id, created_at, last_used_at, expires_at, client_ip, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?)`,
		x.JTI, x.UserID, ms(x.CreatedAt), ms(x.LastUsedAt), ms(x.ExpiresAt), truncate(x.ClientIP, 45), truncate(x.UserAgent, 255))
	return s.wrap("create session", err)
}

const sessionColumns = `jti, user_id, created_at, last_used_at, expires_at, revoked_at, client_ip, user_agent`

func scanSession(sc scanner) (Session, error) {
	var x Session
	var c, l, e, r sql.NullInt64
	if err := sc.Scan(&x.JTI, &x.UserID, &c, &l, &e, &r, &x.ClientIP, &x.UserAgent); err != nil {
		return Session{}, err
	}
	x.CreatedAt, x.LastUsedAt, x.ExpiresAt, x.RevokedAt = fromMS(c), fromMS(l), fromMS(e), fromMS(r)
	return x, nil
}

// Session returns the session with this JWT id.
func (s *Store) Session(ctx context.Context, jti string) (Session, error) {
	x, err := scanSession(s.queryRow(ctx, s.db, `SELECT `+sessionColumns+` FROM sessions WHERE jti = ?`, jti))
	return x, s.wrap("read session", err)
}

// Sessions lists a user's sessions ("" = every user's, for admins), newest first.
func (s *Store) Sessions(ctx context.Context, userID string) ([]Session, error) {
	q, args := ofUser(`SELECT `+sessionColumns+` FROM sessions`, `created_at DESC, jti`, userID)
	return list(ctx, s, "list sessions", scanSession, q, args...)
}

// RevokedSessionsSince returns the ids of sessions revoked at or after t, so that a process
// can update its cache without reloading every session.
func (s *Store) RevokedSessionsSince(ctx context.Context, t time.Time) ([]string, error) {
	return list(ctx, s, "list revoked sessions", scanString, `SELECT jti FROM sessions WHERE revoked_at >= ?`, t.UnixMilli())
}

// RevokeSession revokes one session; userID, when not "", must own it.
func (s *Store) RevokeSession(ctx context.Context, jti, userID string) error {
	return s.revokeOne(ctx, "revoke session", `UPDATE sessions SET revoked_at = ? WHERE jti = ? AND revoked_at IS NULL`, jti, userID)
}

// revokeOne runs update, which stamps one live session or API token (by id) revoked; userID,
// when not "", must own it.
func (s *Store) revokeOne(ctx context.Context, op, update, id, userID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		q, args := update, []any{now().UnixMilli(), id}
		if userID != "" {
			q += ` AND user_id = ?`
			args = append(args, userID)
		}
		return s.execOne(ctx, tx, op, q, args...)
	}, TopicSessions)
}

// RevokeUserCredentials revokes every session and API token of a user (disable, password reset).
func (s *Store) RevokeUserCredentials(ctx context.Context, userID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.revokeUserCredentials(ctx, tx, userID, now().UnixMilli())
	}, TopicSessions)
}

func (s *Store) revokeUserCredentials(ctx context.Context, x execer, userID string, t int64) error {
	if _, err := s.exec(ctx, x, `UPDATE sessions SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, t, userID); err != nil {
		return s.wrap("revoke sessions", err)
	}
	_, err := s.exec(ctx, x, `UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, t, userID)
	return s.wrap("revoke API tokens", err)
}

// TouchSessions writes last-used times in one batch.
func (s *Store) TouchSessions(ctx context.Context, lastUsed map[string]time.Time) error {
	return s.touch(ctx, `UPDATE sessions SET last_used_at = ? WHERE jti = ? AND last_used_at < ?`, lastUsed)
}

func (s *Store) touch(ctx context.Context, query string, lastUsed map[string]time.Time) error {
	if len(lastUsed) == 0 {
		return nil
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, s.q(query))
		if err != nil {
			return s.wrap("touch", err)
		}
		defer stmt.Close()
		for id, at := range lastUsed {
			v := at.UnixMilli()
			if _, err := stmt.ExecContext(ctx, v, id, v); err != nil {
				return s.wrap("touch", err)
			}
		}
		return nil
	})
}
