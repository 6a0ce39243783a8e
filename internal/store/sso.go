package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"time"
)

// SSOIdentity links an OpenID Provider's identity to a user.
type SSOIdentity struct {
	Subject string // SSOSubject(issuer, sub)
	UserID  string
	Groups  []string // at the last sign-in
}

// SSOSubject is the key of a provider identity: a digest of the issuer and its subject, of a
// fixed length whatever the provider's ids look like.
func SSOSubject(issuer, sub string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + sub))
	return hex.EncodeToString(h[:])
}

// SSOIdentityBySubject returns the link of a provider identity (ErrNotFound when none).
func (s *Store) SSOIdentityBySubject(ctx context.Context, subject string) (SSOIdentity, error) {
	id := SSOIdentity{Subject: subject}
	var groups string
	err := s.queryRow(ctx, s.db, `SELECT user_id, groups_json FROM sso_identities WHERE subject = ?`, subject).Scan(&id.UserID, &groups)
	if err != nil {
		return SSOIdentity{}, s.wrap("read sso identity", err)
	}
	_ = json.Unmarshal([]byte(groups), &id.Groups)
	return id, nil
}

// SSOIdentityOfUser returns the identity linked to a user (ErrNotFound when none).
func (s *Store) SSOIdentityOfUser(ctx context.Context, userID string) (SSOIdentity, error) {
	id := SSOIdentity{UserID: userID}
	var groups string
	err := s.queryRow(ctx, s.db, `SELECT subject, groups_json FROM sso_identities WHERE user_id = ?`, userID).Scan(&id.Subject, &groups)
	if err != nil {
		return SSOIdentity{}, s.wrap("read sso identity", err)
	}
	_ = json.Unmarshal([]byte(groups), &id.Groups)
	return id, nil
}

// LinkSSOIdentity records (or renews) the link of a provider identity to a user, with the
// groups of this sign-in. A user has at most one identity: linking a second is ErrConflict.
func (s *Store) LinkSSOIdentity(ctx context.Context, id SSOIdentity, at time.Time) error {
	groups, _ := json.Marshal(id.Groups)
	if id.Groups == nil {
		groups = []byte("[]")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// Only the identity's own row: a user linked to another identity stays linked to it (the
		// unique index refuses a second, ErrConflict), so two sign-ins racing for one account
		// cannot both win.
		if _, err := s.exec(ctx, tx, `DELETE FROM sso_identities WHERE subject = ?`, id.Subject); err != nil {
			return s.wrap("link sso identity", err)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO sso_identities (subject, user_id, groups_json, updated_at) VALUES (?, ?, ?, ?)`,
			id.Subject, id.UserID, string(groups), at.UnixMilli())
		return s.wrap("link sso identity", err)
	})
}

// SSOIdentities lists every link, for re-applying the group → role mapping.
func (s *Store) SSOIdentities(ctx context.Context) ([]SSOIdentity, error) {
	return list(ctx, s, "list sso identities", func(sc scanner) (SSOIdentity, error) {
		var id SSOIdentity
		var groups string
		err := sc.Scan(&id.Subject, &id.UserID, &groups)
		_ = json.Unmarshal([]byte(groups), &id.Groups)
		return id, err
	}, `SELECT subject, user_id, groups_json FROM sso_identities ORDER BY subject`)
}
