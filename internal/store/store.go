package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/mss-login/mss-login/internal/crypt"
)

// Backend names a database engine, as in the users_db.backend configuration key.
type Backend string

// The three supported backends.
const (
	SQLite     Backend = "sqlite"
	PostgreSQL Backend = "postgresql"
	MySQL      Backend = "mysql"
)

// Options says which database to open. Password and SecretKey are never printed by this package.
type Options struct {
	Backend Backend

	// SQLite
	SQLitePath      string
	EncryptionLevel crypt.Level // "" = unencrypted file

	// PostgreSQL and MySQL
	Host     string
	Port     int
	Database string
	User     string
	Password string
	// TLS is the PostgreSQL sslmode (disable … verify-full) or the MySQL tls parameter
	// (true, false, skip-verify, preferred). Empty = the backend's default.
	TLS string

	// MaxOpenConns bounds the connection pool (default 20).
	MaxOpenConns int
	// Lazy: Open does not wait for a PostgreSQL or MySQL server (the first query connects), so
	// that a process can start through a database outage and report it instead of exiting.
	Lazy bool

	// SecretKey is SECRET_KEY: it derives the SQLite file key and the field-encryption key.
	// Without it, encrypted fields cannot be read or written (ErrNoSecret).
	SecretKey string
}

// Where names the database for messages: backend and location, never credentials.
func (o Options) Where() string {
	switch o.Backend {
	case SQLite:
		return fmt.Sprintf("sqlite %s", o.SQLitePath)
	default:
		return fmt.Sprintf("%s %s:%d/%s (user %s)", o.Backend, o.Host, o.Port, o.Database, o.User)
	}
}

// Errors callers test with errors.Is.
var (
	ErrNotFound   = errors.New("not found")
	ErrConflict   = errors.New("already exists")
	ErrOwnerTaken = errors.New("another user is already the owner")
	ErrNoSecret   = errors.New("SECRET_KEY is not set: stored secrets cannot be read or written")
	ErrOwnedRow   = errors.New("the row is owned by a Kubernetes resource")
)

// Store is the users database. It is safe for concurrent use.
type Store struct {
	db     *sql.DB
	d      dialect
	opts   Options
	fields *crypt.Fields // nil without SECRET_KEY

	rebound sync.Map // query text → dialect-specific text
	stmts   sync.Map // query text → *sql.Stmt
}

// Open connects to the database named by opts and checks that it answers. It does not migrate:
// call Migrate (the commands do so at start).
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.MaxOpenConns <= 0 {
		opts.MaxOpenConns = 20
	}
	var (
		db  *sql.DB
		d   dialect
		err error
	)
	switch opts.Backend {
	case SQLite, "":
		opts.Backend = SQLite
		db, err = openSQLite(ctx, opts)
		d = sqliteDialect{}
	case PostgreSQL:
		db, err = openPostgres(opts)
		d = postgresDialect{}
	case MySQL:
		db, err = openMySQL(opts)
		d = mysqlDialect{}
	default:
		return nil, fmt.Errorf("users database: unknown backend %q (want sqlite, postgresql or mysql)", opts.Backend)
	}
	if err != nil {
		return nil, redact(fmt.Errorf("users database %s: %w", opts.Where(), err), opts)
	}
	if opts.Backend != SQLite {
		db.SetMaxOpenConns(opts.MaxOpenConns)
		db.SetMaxIdleConns(opts.MaxOpenConns)
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
	if opts.Backend != SQLite && !opts.Lazy {
		pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		if err := db.PingContext(pingCtx); err != nil {
			db.Close()
			return nil, redact(fmt.Errorf("users database %s is not reachable: %w", opts.Where(), err), opts)
		}
	}
	s := &Store{db: db, d: d, opts: opts}
	if opts.SecretKey != "" {
		if s.fields, err = crypt.NewFields(opts.SecretKey); err != nil {
			db.Close()
			return nil, err
		}
	}
	return s, nil
}

// Close closes the prepared statements and the connection pool.
func (s *Store) Close() error {
	s.stmts.Range(func(_, v any) bool {
		v.(*sql.Stmt).Close()
		return true
	})
	return s.db.Close()
}

// Backend reports which engine the store runs on.
func (s *Store) Backend() Backend { return s.opts.Backend }

// Where names the database for messages, without credentials.
func (s *Store) Where() string { return s.opts.Where() }

// Ping checks that the database answers (for readiness probes).
func (s *Store) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return s.wrap("ping", err)
	}
	return nil
}

// q returns query rewritten for the dialect; results are cached since queries are constants.
func (s *Store) q(query string) string {
	if v, ok := s.rebound.Load(query); ok {
		return v.(string)
	}
	r := s.d.rebind(query)
	s.rebound.Store(query, r)
	return r
}

// stmt returns a prepared statement for query, cached for the life of the store: parsing and
// planning once instead of per call is most of the cost of a point lookup. database/sql
// re-prepares it on each connection as needed.
func (s *Store) stmt(ctx context.Context, x execer, query string) (*sql.Stmt, error) {
	if _, ok := x.(*sql.Conn); ok {
		return nil, errNoStmt // migrations: one-off statements on a locked connection
	}
	tx, inTx := x.(*sql.Tx)
	v, ok := s.stmts.Load(query)
	if !ok {
		if inTx {
			// Preparing on the pool here would wait for a second connection while the
			// transaction holds one: with a full pool, every transaction would wait forever.
			return nil, errNoStmt
		}
		prepared, err := s.db.PrepareContext(ctx, s.q(query))
		if err != nil {
			return nil, err
		}
		if v, ok = s.stmts.LoadOrStore(query, prepared); ok {
			prepared.Close() // another caller stored one first
		}
	}
	st := v.(*sql.Stmt)
	if inTx {
		return tx.StmtContext(ctx, st), nil
	}
	return st, nil
}

var errNoStmt = errors.New("no prepared statement")

func (s *Store) exec(ctx context.Context, x execer, query string, args ...any) (sql.Result, error) {
	st, err := s.stmt(ctx, x, query)
	if err == errNoStmt {
		return x.ExecContext(ctx, s.q(query), args...)
	}
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (s *Store) queryRow(ctx context.Context, x execer, query string, args ...any) *sql.Row {
	st, err := s.stmt(ctx, x, query)
	if err != nil {
		// Unprepared (in a transaction, or a *sql.Row must carry the prepare error).
		return x.QueryRowContext(ctx, s.q(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

func (s *Store) query(ctx context.Context, x execer, query string, args ...any) (*sql.Rows, error) {
	st, err := s.stmt(ctx, x, query)
	if err == errNoStmt {
		return x.QueryContext(ctx, s.q(query), args...)
	}
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// execer is what *sql.DB, *sql.Conn and *sql.Tx share.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// scanner is what *sql.Row and *sql.Rows share.
type scanner interface{ Scan(...any) error }

// list runs a query on the pool and scans every row with scan; op names it in errors.
func list[T any](ctx context.Context, s *Store, op string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := s.query(ctx, s.db, query, args...)
	if err != nil {
		return nil, s.wrap(op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(op, err)
		}
		out = append(out, v)
	}
	return out, s.wrap(op, rows.Err())
}

func scanString(sc scanner) (string, error) {
	var v string
	err := sc.Scan(&v)
	return v, err
}

// ofUser limits a listing to one user's rows (userID "": every user's, for admins) and orders it.
func ofUser(query, order, userID string) (string, []any) {
	if userID == "" {
		return query + ` ORDER BY ` + order, nil
	}
	return query + ` WHERE user_id = ? ORDER BY ` + order, []any{userID}
}

// execOne runs a write that must change a row: when it changes none, the answer is ErrNotFound.
func (s *Store) execOne(ctx context.Context, x execer, op, query string, args ...any) error {
	res, err := s.exec(ctx, x, query, args...)
	if err != nil {
		return s.wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// createOrRenew writes a lock (a ban, a device lock) that one caller per live lock creates:
// insert is an insert-ignore, and when the lock exists, renew updates it only if it has
// expired. created says whether either wrote a row.
func (s *Store) createOrRenew(ctx context.Context, tx *sql.Tx, op, insert string, insertArgs []any, renew string, renewArgs ...any) (created bool, err error) {
	res, err := s.exec(ctx, tx, insert, insertArgs...)
	if err != nil {
		return false, s.wrap(op, err)
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, nil
	}
	res, err = s.exec(ctx, tx, renew, renewArgs...)
	if err != nil {
		return false, s.wrap(op, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// inTx runs fn in a transaction and bumps the change counters of topics when it commits, so
// that every process caching those tables notices the write.
func (s *Store) inTx(ctx context.Context, fn func(tx *sql.Tx) error, topics ...string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap("begin", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after commit
	if err := fn(tx); err != nil {
		return err
	}
	for _, t := range topics {
		if _, err := s.exec(ctx, tx, `UPDATE change_counters SET version = version + 1 WHERE topic = ?`, t); err != nil {
			return s.wrap("bump change counter", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return s.wrap("commit", err)
	}
	return nil
}

// wrap adds the operation and the database's name to a driver error, maps uniqueness violations
// to ErrConflict, and makes sure no credential can leak through the driver's text.
func (s *Store) wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrConflict) || errors.Is(err, ErrOwnerTaken) {
		return err
	}
	if s.d.isUniqueViolation(err) {
		return fmt.Errorf("%s: %w", op, ErrConflict)
	}
	return redact(fmt.Errorf("users database %s: %s: %w", s.opts.Where(), op, err), s.opts)
}

// redact replaces any credential that a driver might have echoed.
func redact(err error, o Options) error {
	msg := err.Error()
	clean := msg
	for _, secret := range []string{o.Password, o.SecretKey} {
		if len(secret) >= 4 {
			clean = strings.ReplaceAll(clean, secret, "[redacted]")
		}
	}
	if clean == msg {
		return err
	}
	return errors.New(clean)
}

// Times are stored as UTC Unix milliseconds; zero time.Time means SQL NULL.
func ms(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

func fromMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return time.UnixMilli(v.Int64).UTC()
}

func now() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

// newID returns a random RFC 4122 version 4 UUID, the id format of the original's users.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	// Cut on a rune boundary so MySQL's utf8mb4 never sees half a character.
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
