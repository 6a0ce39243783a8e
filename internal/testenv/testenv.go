// Package testenv gives tests the real servers that `make test` starts (PostgreSQL, MariaDB,
// S3, a real ComfyUI, the envtest control plane) through environment variables. Without a variable a plain
// `go test` skips the test and says to run `make test`; under CI (CI=true) a missing server
// is a failure, never a skip.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver for creating test databases

	"github.com/mss-login/mss-login/internal/store"
)

// Environment variables set by `make test` (hack/test.sh).
const (
	PostgresDSN = "MSS_TEST_POSTGRES_DSN"
	MySQLDSN    = "MSS_TEST_MYSQL_DSN"
	S3Endpoint  = "MSS_TEST_S3_ENDPOINT"
	S3AccessKey = "MSS_TEST_S3_ACCESS_KEY"
	S3SecretKey = "MSS_TEST_S3_SECRET_KEY"
	Assets      = "KUBEBUILDER_ASSETS"
	Chromium    = "MSS_TEST_CHROMIUM"  // path of a Chromium binary (Debian's /usr/bin/chromium)
	Artifacts   = "MSS_TEST_ARTIFACTS" // where tests leave screenshots (default bin/test-artifacts)
	// ComfyUIURL is a real ComfyUI (hack/comfyui.sh, started with --multi-user by
	// hack/test-servers.sh); ComfyUIDir is its base directory (input, output, user).
	ComfyUIURL = "MSS_TEST_COMFYUI_URL"
	ComfyUIDir = "MSS_TEST_COMFYUI_DIR"
)

// InCI reports whether a missing server must fail the test rather than skip it: under CI
// (CI=true), and under `make test` (MSS_TEST_REQUIRE_SERVERS=1), which starts every server.
func InCI() bool {
	for _, name := range []string{"CI", "MSS_TEST_REQUIRE_SERVERS"} {
		v := strings.ToLower(os.Getenv(name))
		if v == "true" || v == "1" {
			return true
		}
	}
	return false
}

// Require returns the value of the environment variable name. When it is unset the test is
// skipped, or fails under CI.
func Require(t testing.TB, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v != "" {
		return v
	}
	if InCI() {
		t.Fatalf("%s is not set: under CI every real server must be running (run the tests through `make test`)", name)
	}
	t.Skipf("%s is not set: run `make test`, which starts the real servers", name)
	return ""
}

// Backends lists the three database backends every store test runs on.
var Backends = []store.Backend{store.SQLite, store.PostgreSQL, store.MySQL}

// Secret is a SECRET_KEY for tests.
const Secret = "test-secret-key-0123456789abcdef-0123456789"

// Database creates an empty database of backend b for this test (dropped at cleanup) and
// returns the options that open it. SQLite files are unencrypted unless the caller sets
// EncryptionLevel.
func Database(t testing.TB, b store.Backend) store.Options {
	t.Helper()
	name := "mss_test_" + randomHex(6)
	switch b {
	case store.SQLite:
		return store.Options{Backend: store.SQLite, SQLitePath: filepath.Join(t.TempDir(), "users.db"), SecretKey: Secret}
	case store.PostgreSQL:
		u := parse(t, PostgresDSN, Require(t, PostgresDSN))
		admin := openAdmin(t, "pgx", u.String())
		mustExec(t, admin, `CREATE DATABASE `+name)
		t.Cleanup(func() { _, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`); admin.Close() })
		return serverOptions(t, b, u, name)
	case store.MySQL:
		u := parse(t, MySQLDSN, Require(t, MySQLDSN))
		cfg := mysql.NewConfig()
		cfg.User, cfg.Net, cfg.Addr = u.User.Username(), "tcp", u.Host
		cfg.Passwd, _ = u.User.Password()
		admin := openAdmin(t, "mysql", cfg.FormatDSN())
		mustExec(t, admin, `CREATE DATABASE `+name+` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin`)
		t.Cleanup(func() { _, _ = admin.Exec(`DROP DATABASE IF EXISTS ` + name); admin.Close() })
		return serverOptions(t, b, u, name)
	}
	t.Fatalf("unknown backend %q", b)
	return store.Options{}
}

// Open opens and migrates a fresh database of backend b, closed at cleanup.
func Open(t testing.TB, b store.Backend) *store.Store {
	t.Helper()
	return OpenOptions(t, Database(t, b))
}

// OpenOptions opens and migrates the database of o, closed at cleanup.
func OpenOptions(t testing.TB, o store.Options) *store.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return s
}

func serverOptions(t testing.TB, b store.Backend, u *url.URL, db string) store.Options {
	host, portText, err := net.SplitHostPort(u.Host)
	if err != nil {
		t.Fatalf("bad test DSN host %q: %v", u.Host, err)
	}
	port, _ := strconv.Atoi(portText)
	pw, _ := u.User.Password()
	o := store.Options{Backend: b, Host: host, Port: port, Database: db, User: u.User.Username(), Password: pw, SecretKey: Secret}
	if b == store.PostgreSQL {
		o.TLS = "disable"
	}
	return o
}

func parse(t testing.TB, name, dsn string) *url.URL {
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("%s is not a URL", name)
	}
	return u
}

func openAdmin(t testing.TB, driver, dsn string) *sql.DB {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("test database server: %v", err)
	}
	return db
}

func mustExec(t testing.TB, db *sql.DB, q string) {
	t.Helper()
	if _, err := db.Exec(q); err != nil {
		t.Fatalf("test database server: %s: %v", q, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ForEachBackend runs f as a subtest on each backend with a fresh, migrated store.
func ForEachBackend(t *testing.T, f func(t *testing.T, s *store.Store)) {
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			f(t, Open(t, b))
		})
	}
}
