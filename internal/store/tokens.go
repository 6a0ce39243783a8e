package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// APIToken is a stored API token: only the SHA-256 of the token is kept.
type APIToken struct {
	ID         string
	TokenHash  string // hex SHA-256 of the raw token
	UserID     string
	Label      string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero = never expires
	LastUsedAt time.Time
	RevokedAt  time.Time
}

// CreateAPIToken stores t, giving it an id and a creation time when unset.
func (s *Store) CreateAPIToken(ctx context.Context, t *APIToken) error {
	if len(t.TokenHash) != 64 || t.UserID == "" {
		return errors.New("create API token: a 64-hex-digit hash and a user are required")
	}
	if t.ID == "" {
		t.ID = newID()
	}
	if t.CreatedAt.IsZero() {
		t.CreatedAt = now()
	}
	// Bumps the sessions topic: the auth servers cache the token table.
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO api_tokens (id, token_hash, user_id, label, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			t.ID, t.TokenHash, t.UserID, t.Label, ms(t.CreatedAt), ms(t.ExpiresAt))
		return s.wrap("create API token", err)
	}, TopicSessions)
}

const tokenColumns = `id, token_hash, user_id, label, created_at, expires_at, last_used_at, revoked_at`

func scanToken(sc scanner) (APIToken, error) {
	var t APIToken
	var c, e, l, r sql.NullInt64
	if err := sc.Scan(&t.ID, &t.TokenHash, &t.UserID, &t.Label, &c, &e, &l, &r); err != nil {
		return APIToken{}, err
	}
	t.CreatedAt, t.ExpiresAt, t.LastUsedAt, t.RevokedAt = fromMS(c), fromMS(e), fromMS(l), fromMS(r)
	return t, nil
}

// APITokenByHash returns the token with this hash, revoked or not; the caller checks expiry
// and revocation.
func (s *Store) APITokenByHash(ctx context.Context, hash string) (APIToken, error) {
	t, err := scanToken(s.queryRow(ctx, s.db, `SELECT `+tokenColumns+` FROM api_tokens WHERE token_hash = ?`, hash))
	return t, s.wrap("read API token", err)
}

// APITokens lists a user's tokens ("" = every user's, for admins), newest first.
func (s *Store) APITokens(ctx context.Context, userID string) ([]APIToken, error) {
	q, args := ofUser(`SELECT `+tokenColumns+` FROM api_tokens`, `created_at DESC, id`, userID)
	return list(ctx, s, "list API tokens", scanToken, q, args...)
}

// RevokeAPIToken revokes one token by id; userID, when not "", must own it (self-service).
func (s *Store) RevokeAPIToken(ctx context.Context, id, userID string) error {
	return s.revokeOne(ctx, "revoke API token", `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, id, userID)
}

// TouchAPITokens writes last-used times in one batch (the auth server collects them in memory).
func (s *Store) TouchAPITokens(ctx context.Context, lastUsed map[string]time.Time) error {
	return s.touch(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)`, lastUsed)
}
