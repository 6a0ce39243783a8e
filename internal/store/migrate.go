package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// migration is one schema version: SQL statements, Go code, or both (SQL first).
type migration struct {
	version int
	name    string
	sql     string
	apply   func(ctx context.Context, s *Store, x execer) error
}

func mustSQL(name string) string {
	b, err := migrationFS.ReadFile("migrations/" + name)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// migrations is the ordered history of the schema. Never edit an entry once released: add one.
var migrations = []migration{
	{version: 1, name: "schema", sql: mustSQL("0001_schema.sql")},
	{version: 2, name: "builtin roles and change counters", apply: seedBuiltins},
	{version: 3, name: "prompt owners", sql: mustSQL("0003_prompt_owners.sql")},
	{version: 4, name: "model grants", sql: mustSQL("0004_model_grants.sql"), apply: seedCounters},
	{version: 5, name: "notification cursors", sql: mustSQL("0005_notify.sql")},
	{version: 6, name: "single sign-on identities", sql: mustSQL("0006_sso.sql")},
	{version: 7, name: "model downloads", sql: mustSQL("0007_model_downloads.sql"), apply: seedCounters},
}

// LatestVersion is the schema version this binary writes.
func LatestVersion() int { return migrations[len(migrations)-1].version }

// Migrate brings the schema to the latest version. It is safe to run from several processes at
// once (PostgreSQL advisory lock, MySQL GET_LOCK, an SQLite exclusive transaction), and running
// it again changes nothing. It returns the versions it applied.
func (s *Store) Migrate(ctx context.Context) ([]int, error) { return s.MigrateTo(ctx, LatestVersion()) }

// MigrateTo applies migrations up to and including version target.
func (s *Store) MigrateTo(ctx context.Context, target int) ([]int, error) {
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, s.wrap("migrate", err)
	}
	defer conn.Close()
	unlock, err := s.d.lockMigrations(ctx, conn)
	if err != nil {
		return nil, s.wrap("migrate: take the migration lock", err)
	}
	defer unlock()
	// Under the lock: PostgreSQL's CREATE TABLE IF NOT EXISTS is not safe against a
	// concurrent twin.
	if _, err := conn.ExecContext(ctx, s.d.ddl("CREATE TABLE IF NOT EXISTS schema_migrations "+
		"(version INTEGER PRIMARY KEY, name VARCHAR(128) NOT NULL, applied_at BIGINT NOT NULL){{table}}")); err != nil {
		return nil, s.wrap("migrate: create schema_migrations", err)
	}

	current, err := s.schemaVersion(ctx, conn)
	if err != nil {
		return nil, err
	}
	if current > LatestVersion() {
		return nil, fmt.Errorf("users database %s has schema version %d, newer than this binary's %d: "+
			"upgrade mss-login", s.Where(), current, LatestVersion())
	}
	var applied []int
	_, sqliteLock := s.d.(sqliteDialect)
	for _, m := range migrations {
		if m.version <= current || m.version > target {
			continue
		}
		if err := s.applyMigration(ctx, conn, m, sqliteLock); err != nil {
			return applied, fmt.Errorf("users database %s: migration %d (%s): %w", s.Where(), m.version, m.name, err)
		}
		applied = append(applied, m.version)
	}
	if sqliteLock {
		// The exclusive transaction taken as the lock ends here.
		if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
			return applied, s.wrap("migrate: commit", err)
		}
	}
	return applied, nil
}

// SchemaVersion reports the version the database is at (0 = empty).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	return s.schemaVersion(ctx, s.db)
}

func (s *Store) schemaVersion(ctx context.Context, x execer) (int, error) {
	var v sql.NullInt64
	if err := x.QueryRowContext(ctx, "SELECT MAX(version) FROM schema_migrations").Scan(&v); err != nil {
		return 0, s.wrap("read schema version", err)
	}
	return int(v.Int64), nil
}

func (s *Store) applyMigration(ctx context.Context, conn *sql.Conn, m migration, inLockTx bool) error {
	// SQLite: everything already runs inside the exclusive transaction that is the lock.
	// PostgreSQL: one transaction per migration. MySQL: DDL commits implicitly, so statements
	// run one by one and a rerun after a crash skips indexes that already exist.
	var x execer = conn
	var tx *sql.Tx
	if !inLockTx && s.d.transactionalDDL() {
		var err error
		if tx, err = conn.BeginTx(ctx, nil); err != nil {
			return err
		}
		defer tx.Rollback() //nolint:errcheck
		x = tx
	}
	for _, stmt := range splitStatements(m.sql) {
		if _, err := x.ExecContext(ctx, s.d.ddl(stmt)); err != nil {
			var me *mysql.MySQLError
			if errors.As(err, &me) && me.Number == 1061 { // duplicate index name: already applied
				continue
			}
			return err
		}
	}
	if m.apply != nil {
		if err := m.apply(ctx, s, x); err != nil {
			return err
		}
	}
	if _, err := x.ExecContext(ctx, s.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)"),
		m.version, m.name, now().UnixMilli()); err != nil {
		return err
	}
	if tx != nil {
		return tx.Commit()
	}
	return nil
}

// splitStatements splits a migration file on semicolons at line ends, dropping comments.
func splitStatements(src string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(src, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteString("\n")
		if strings.HasSuffix(t, ";") {
			stmt := strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")
			out = append(out, stmt)
			cur.Reset()
		}
	}
	if rest := strings.TrimSpace(cur.String()); rest != "" {
		out = append(out, rest)
	}
	return out
}

func seedBuiltins(ctx context.Context, s *Store, x execer) error {
	if err := seedCounters(ctx, s, x); err != nil {
		return err
	}
	return s.restoreBuiltinRoles(ctx, x, false)
}
