package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
)

// Role is a stored permission set.
type Role struct {
	roles.Role
	Builtin   bool
	OwnerRef  string // the Kubernetes resource that owns the row, "" for none
	CreatedAt time.Time
	UpdatedAt time.Time
}

// restoreBuiltinRoles writes the original's defaults for the built-in roles: all of them when
// overwrite, else only the missing ones (first migration).
func (s *Store) restoreBuiltinRoles(ctx context.Context, x execer, overwrite bool) error {
	for _, name := range roles.Builtin {
		def, _ := roles.Default(name)
		if overwrite {
			if err := s.putRole(ctx, x, def, true, ""); err != nil {
				return err
			}
			continue
		}
		perms, ui, err := encodeRole(def)
		if err != nil {
			return err
		}
		t := now().UnixMilli()
		if _, err := s.exec(ctx, x, s.d.insertIgnore(
			"INSERT INTO roles (name, builtin, permissions, ui_flags, owner_ref, created_at, updated_at) VALUES (?, ?, ?, ?, '', ?, ?)",
			"name"), name, true, perms, ui, t, t); err != nil {
			return err
		}
	}
	return nil
}

func encodeRole(r roles.Role) (perms, ui string, err error) {
	p, err := json.Marshal(nonNil(r.Permissions))
	if err != nil {
		return "", "", err
	}
	u, err := json.Marshal(nonNil(r.UI))
	return string(p), string(u), err
}

func nonNil(m map[string]bool) map[string]bool {
	if m == nil {
		return map[string]bool{}
	}
	return m
}

func (s *Store) putRole(ctx context.Context, x execer, r roles.Role, builtin bool, ownerRef string) error {
	perms, ui, err := encodeRole(r)
	if err != nil {
		return err
	}
	t := now().UnixMilli()
	res, err := s.exec(ctx, x, `UPDATE roles SET permissions = ?, ui_flags = ?, owner_ref = ?, updated_at = ? WHERE name = ?`,
		perms, ui, ownerRef, t, r.Name)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return nil
	}
	_, err = s.exec(ctx, x, `INSERT INTO roles (name, builtin, permissions, ui_flags, owner_ref, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.Name, builtin, perms, ui, ownerRef, t, t)
	return err
}

// PutRole creates or replaces role r, owned by ownerRef ("" for none). Unknown permission
// names are refused. A built-in role keeps its built-in mark while overridden.
func (s *Store) PutRole(ctx context.Context, r roles.Role, ownerRef string) error {
	if err := r.Validate(); err != nil {
		return err
	}
	if r.Name == "" || len(r.Name) > 64 {
		return fmt.Errorf("role name must be 1 to 64 characters")
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.wrap("put role", s.putRole(ctx, tx, r, roles.IsBuiltin(r.Name), ownerRef))
	}, TopicRoles)
}

// DeleteRole removes role name; a built-in role goes back to the original's defaults instead.
func (s *Store) DeleteRole(ctx context.Context, name string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if def, ok := roles.Default(name); ok {
			return s.wrap("restore built-in role", s.putRole(ctx, tx, def, true, ""))
		}
		return s.execOne(ctx, tx, "delete role", `DELETE FROM roles WHERE name = ?`, name)
	}, TopicRoles)
}

const roleColumns = `name, builtin, permissions, ui_flags, owner_ref, created_at, updated_at`

func scanRole(sc scanner) (Role, error) {
	var (
		r            Role
		perms, ui    string
		created, upd sql.NullInt64
	)
	if err := sc.Scan(&r.Name, &r.Builtin, &perms, &ui, &r.OwnerRef, &created, &upd); err != nil {
		return Role{}, err
	}
	if err := json.Unmarshal([]byte(perms), &r.Permissions); err != nil {
		return Role{}, fmt.Errorf("role %q: bad permissions JSON: %w", r.Name, err)
	}
	if err := json.Unmarshal([]byte(ui), &r.UI); err != nil {
		return Role{}, fmt.Errorf("role %q: bad UI flags JSON: %w", r.Name, err)
	}
	r.CreatedAt, r.UpdatedAt = fromMS(created), fromMS(upd)
	return r, nil
}

// Role returns the role called name.
func (s *Store) Role(ctx context.Context, name string) (Role, error) {
	r, err := scanRole(s.queryRow(ctx, s.db, `SELECT `+roleColumns+` FROM roles WHERE name = ?`, name))
	return r, s.wrap("read role", err)
}

// Roles returns every role, sorted by name.
func (s *Store) Roles(ctx context.Context) ([]Role, error) {
	out, err := list(ctx, s, "list roles", scanRole, `SELECT `+roleColumns+` FROM roles`)
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, err
}
