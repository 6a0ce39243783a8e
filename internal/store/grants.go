package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/mss-login/mss-login/internal/modelgrant"
)

// Grant is a stored model grant: to every member of Role, or to the user UserID.
type Grant struct {
	modelgrant.Grant
	Role      string
	UserID    string
	OwnerRef  string // the resource that owns the row; "" for one made through the admin API
	CreatedBy string
	CreatedAt time.Time
}

// OwnedError: a grant that a resource owns cannot be changed through the API.
type OwnedError struct{ OwnerRef string }

func (e *OwnedError) Error() string {
	return fmt.Sprintf("the grant belongs to %s: change it there", e.OwnerRef)
}

// Grants returns every model grant.
func (s *Store) Grants(ctx context.Context) ([]Grant, error) {
	return list(ctx, s, "read model grants", func(sc scanner) (Grant, error) {
		var g Grant
		var at int64
		err := sc.Scan(&g.Role, &g.UserID, &g.Folder, &g.Pattern, &g.OwnerRef, &g.CreatedBy, &at)
		g.CreatedAt = time.UnixMilli(at).UTC()
		return g, err
	}, `SELECT role, user_id, folder, pattern, owner_ref, created_by, created_at FROM model_grants ORDER BY id`)
}

// ReplaceOwnedGrants makes grants the only grants ownerRef owns, all to role (or to the user
// userID): the operator's write of a resource's spec. An empty list removes them.
func (s *Store) ReplaceOwnedGrants(ctx context.Context, ownerRef, role, userID string, grants []modelgrant.Grant) error {
	if ownerRef == "" || len(grants) > 0 && (role == "") == (userID == "") {
		return fmt.Errorf("replace model grants: one owner and one of role or user")
	}
	for i, g := range grants {
		if err := g.Validate(); err != nil {
			return fmt.Errorf("models[%d]: %w", i, err)
		}
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM model_grants WHERE owner_ref = ?`, ownerRef); err != nil {
			return s.wrap("replace model grants", err)
		}
		t := now().UnixMilli()
		for _, g := range grants {
			if _, err := s.exec(ctx, tx, `INSERT INTO model_grants (role, user_id, folder, pattern, owner_ref, created_by, created_at)
				VALUES (?, ?, ?, ?, ?, ?, ?)`, role, userID, g.Folder, g.Pattern, ownerRef, ownerRef, t); err != nil {
				return s.wrap("replace model grants", err)
			}
		}
		return nil
	}, TopicGrants)
}

// AddGrant grants a user a folder's models matching a pattern, as a row no resource owns.
// Granting what the user already has from such a row is ErrConflict.
func (s *Store) AddGrant(ctx context.Context, userID string, g modelgrant.Grant, by string) error {
	if err := g.Validate(); err != nil {
		return err
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := s.queryRow(ctx, tx, `SELECT COUNT(*) FROM model_grants WHERE user_id = ? AND folder = ? AND pattern = ? AND owner_ref = ''`,
			userID, g.Folder, g.Pattern).Scan(&n); err != nil {
			return s.wrap("add model grant", err)
		}
		if n > 0 {
			return ErrConflict
		}
		_, err := s.exec(ctx, tx, `INSERT INTO model_grants (role, user_id, folder, pattern, owner_ref, created_by, created_at)
			VALUES ('', ?, ?, ?, '', ?, ?)`, userID, g.Folder, g.Pattern, by, now().UnixMilli())
		return s.wrap("add model grant", err)
	}, TopicGrants)
}

// DeleteGrant removes a user's grant that no resource owns. A grant the user has only from a
// resource (theirs or their role's, passed as role) is an *OwnedError naming it; none at all
// is ErrNotFound.
func (s *Store) DeleteGrant(ctx context.Context, userID, role string, g modelgrant.Grant) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM model_grants WHERE user_id = ? AND folder = ? AND pattern = ? AND owner_ref = ''`,
			userID, g.Folder, g.Pattern)
		if err != nil {
			return s.wrap("delete model grant", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		var owner string
		err = s.queryRow(ctx, tx, `SELECT owner_ref FROM model_grants WHERE (user_id = ? OR (role = ? AND role <> '')) AND folder = ? AND pattern = ?
			ORDER BY id`, userID, role, g.Folder, g.Pattern).Scan(&owner)
		if err == sql.ErrNoRows {
			return ErrNotFound
		}
		if err != nil {
			return s.wrap("delete model grant", err)
		}
		return &OwnedError{OwnerRef: owner}
	}, TopicGrants)
}

// DisownGrants makes the grants ownerRef owns rows no resource owns (a ComfyUser deleted with
// deletionPolicy Orphan: its user keeps what it was granted).
func (s *Store) DisownGrants(ctx context.Context, ownerRef string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE model_grants SET owner_ref = '' WHERE owner_ref = ?`, ownerRef)
		return s.wrap("disown model grants", err)
	}, TopicGrants)
}
