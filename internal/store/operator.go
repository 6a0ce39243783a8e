package store

import (
	"context"
	"strings"
)

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
