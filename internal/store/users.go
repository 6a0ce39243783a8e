package store

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"strings"
	"time"
)

// User is a stored account. PasswordHash is a bcrypt or argon2id string, never a password.
type User struct {
	ID                string
	Username          string
	PasswordHash      string
	Role              string
	Owner             bool // at most one user is the owner
	Disabled          bool
	MFAEnabled        bool
	OwnerRef          string // the Kubernetes resource that owns the row, "" for none
	CreatedAt         time.Time
	UpdatedAt         time.Time
	PasswordChangedAt time.Time
	LastLoginAt       time.Time
}

var usernamePattern = regexp.MustCompile(`^[A-Za-z0-9_]{3,128}$`)

// ValidateUsername applies the original's rules: letters, digits, underscore, 3 to 128, not a
// reserved name (guest, default, defaults).
func ValidateUsername(u string) error {
	if !usernamePattern.MatchString(u) {
		return errors.New("username: 3 to 128 letters, digits or underscores")
	}
	switch strings.ToLower(u) {
	case "guest", "default", "defaults":
		return errors.New("username: " + u + " is reserved")
	}
	return nil
}

const userColumns = `id, username, password_hash, role, owner_flag, disabled, mfa_enabled, owner_ref,
	created_at, updated_at, password_changed_at, last_login_at`

func scanUser(sc scanner) (User, error) {
	var (
		u                         User
		owner                     sql.NullInt64
		created, upd, pwAt, login sql.NullInt64
	)
	err := sc.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Role, &owner, &u.Disabled, &u.MFAEnabled,
		&u.OwnerRef, &created, &upd, &pwAt, &login)
	if err != nil {
		return User{}, err
	}
	u.Owner = owner.Valid && owner.Int64 == 1
	u.CreatedAt, u.UpdatedAt = fromMS(created), fromMS(upd)
	u.PasswordChangedAt, u.LastLoginAt = fromMS(pwAt), fromMS(login)
	return u, nil
}

func ownerFlag(owner bool) any {
	if owner {
		return 1
	}
	return nil
}

// CreateUser stores u, giving it an id and timestamps when unset. It fails with ErrConflict when
// the username (compared case-insensitively) exists, and ErrOwnerTaken when u.Owner and another
// user is already the owner.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	if u.Username == "" || u.Role == "" {
		return errors.New("create user: username and role are required")
	}
	if u.ID == "" {
		u.ID = newID()
	}
	t := now()
	if u.CreatedAt.IsZero() {
		u.CreatedAt = t
	}
	u.UpdatedAt = t
	if u.PasswordHash != "" && u.PasswordChangedAt.IsZero() {
		u.PasswordChangedAt = t
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.checkOwner(ctx, tx, u.ID, u.Owner); err != nil {
			return err
		}
		_, err := s.exec(ctx, tx, `INSERT INTO users (id, username, username_key, password_hash, role, owner_flag,
			disabled, mfa_enabled, owner_ref, created_at, updated_at, password_changed_at, last_login_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Username, strings.ToLower(u.Username), u.PasswordHash, u.Role, ownerFlag(u.Owner),
			u.Disabled, u.MFAEnabled, u.OwnerRef, ms(u.CreatedAt), ms(u.UpdatedAt), ms(u.PasswordChangedAt), ms(u.LastLoginAt))
		return s.wrap("create user", err)
	}, TopicUsers)
}

// checkOwner gives a clear error before the unique index would: another user holds the owner flag.
func (s *Store) checkOwner(ctx context.Context, x execer, id string, owner bool) error {
	if !owner {
		return nil
	}
	var other string
	err := s.queryRow(ctx, x, `SELECT username FROM users WHERE owner_flag = 1 AND id <> ?`, id).Scan(&other)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return s.wrap("check owner", err)
	}
	return ErrOwnerTaken
}

// UserByName returns the user with exactly this username.
func (s *Store) UserByName(ctx context.Context, username string) (User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE username = ?`, username))
	return u, s.wrap("read user", err)
}

// UserByID returns the user with this id.
func (s *Store) UserByID(ctx context.Context, id string) (User, error) {
	return s.userByID(ctx, s.db, id)
}

func (s *Store) userByID(ctx context.Context, x execer, id string) (User, error) {
	u, err := scanUser(s.queryRow(ctx, x, `SELECT `+userColumns+` FROM users WHERE id = ?`, id))
	return u, s.wrap("read user", err)
}

// UserByUsernameKey returns the user whose username equals name ignoring case: the database
// admits one of "Alice" and "alice", so the operator must find either before creating.
func (s *Store) UserByUsernameKey(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE username_key = ?`, strings.ToLower(name)))
	return u, s.wrap("read user", err)
}

// Owner returns the user that holds the owner flag, or ErrNotFound.
func (s *Store) Owner(ctx context.Context) (User, error) {
	u, err := scanUser(s.queryRow(ctx, s.db, `SELECT `+userColumns+` FROM users WHERE owner_flag = 1`))
	return u, s.wrap("read owner", err)
}

// Users returns every user, ordered by username.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	return list(ctx, s, "list users", scanUser, `SELECT `+userColumns+` FROM users ORDER BY username`)
}

// CountUsers returns how many users exist (0 = first run: registration creates the owner).
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, s.wrap("count users", err)
}

// UpdateUser writes u's role, owner flag, disabled flag and owning resource. Disabling a user
// revokes all of its sessions and API tokens in the same transaction.
func (s *Store) UpdateUser(ctx context.Context, u User) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.updateUser(ctx, tx, u, now().UnixMilli())
	}, TopicUsers, TopicSessions)
}

func (s *Store) updateUser(ctx context.Context, tx *sql.Tx, u User, t int64) error {
	if err := s.checkOwner(ctx, tx, u.ID, u.Owner); err != nil {
		return err
	}
	if err := s.execOne(ctx, tx, "update user", `UPDATE users SET role = ?, owner_flag = ?, disabled = ?, owner_ref = ?, updated_at = ? WHERE id = ?`,
		u.Role, ownerFlag(u.Owner), u.Disabled, u.OwnerRef, t, u.ID); err != nil {
		return err
	}
	if u.Disabled {
		return s.revokeUserCredentials(ctx, tx, u.ID, t)
	}
	return nil
}

// SetPasswordHash replaces the user's password hash. Sessions stay valid; callers that change a
// password for security reasons also call RevokeUserSessions.
func (s *Store) SetPasswordHash(ctx context.Context, id, hash string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.setPasswordHash(ctx, tx, id, hash, now().UnixMilli())
	}, TopicUsers)
}

func (s *Store) setPasswordHash(ctx context.Context, tx *sql.Tx, id, hash string, t int64) error {
	return s.execOne(ctx, tx, "set password", `UPDATE users SET password_hash = ?, password_changed_at = ?, updated_at = ? WHERE id = ?`,
		hash, t, t, id)
}

// UpdateUserAndPassword is UpdateUser (when u is not nil) and SetPasswordHash (when hash is not
// "") in one transaction, which then reads the row back: the answer carries the times the
// database stamped (password_changed_at). id is the user's; u, when given, must be that row.
// Either write failing leaves the row as it was (a second owner changes no password).
func (s *Store) UpdateUserAndPassword(ctx context.Context, id string, u *User, hash string) (User, error) {
	if u != nil && u.ID != id {
		return User{}, errors.New("update user and password: the row is another user's")
	}
	topics := []string{TopicUsers}
	if u != nil {
		topics = append(topics, TopicSessions) // as UpdateUser: disabling revokes
	}
	var row User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		t := now().UnixMilli()
		if u != nil {
			if err := s.updateUser(ctx, tx, *u, t); err != nil {
				return err
			}
		}
		if hash != "" {
			if err := s.setPasswordHash(ctx, tx, id, hash, t); err != nil {
				return err
			}
		}
		var err error
		row, err = s.userByID(ctx, tx, id)
		return err
	}, topics...)
	return row, err
}

// RehashPassword replaces the stored hash of the same password by a stronger one (bcrypt or
// weak argon2id to argon2id, after a login proved the password). It is not a password change:
// password_changed_at stays, so the operator, which compares it with what it applied, does not
// take the re-hash for a change behind its back. Only the hash the login verified is replaced:
// a password changed meanwhile wins. It reports whether the hash was replaced.
func (s *Store) RehashPassword(ctx context.Context, id, verifiedHash, newHash string) (bool, error) {
	var replaced bool
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `UPDATE users SET password_hash = ?, updated_at = ? WHERE id = ? AND password_hash = ?`,
			newHash, now().UnixMilli(), id, verifiedHash)
		if err != nil {
			return s.wrap("re-hash password", err)
		}
		n, _ := res.RowsAffected()
		replaced = n == 1
		return nil
	}, TopicUsers)
	return replaced, err
}

// RecordLogin stamps a successful login.
func (s *Store) RecordLogin(ctx context.Context, id string, at time.Time) error {
	_, err := s.exec(ctx, s.db, `UPDATE users SET last_login_at = ? WHERE id = ?`, ms(at), id)
	return s.wrap("record login", err)
}

// DeleteUser removes the user with its sessions, tokens and MFA data.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.execOne(ctx, tx, "delete user", `DELETE FROM users WHERE id = ?`, id); err != nil {
			return err
		}
		// The user's grants go with them.
		_, err := s.exec(ctx, tx, `DELETE FROM model_grants WHERE user_id = ?`, id)
		return s.wrap("delete user's model grants", err)
	}, TopicUsers, TopicSessions, TopicGrants)
}
