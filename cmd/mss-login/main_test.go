package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// run executes the CLI in-process with args and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	root := newRoot(&out, &errOut)
	root.SetArgs(args)
	err := root.ExecuteContext(context.Background())
	return out.String(), errOut.String(), err
}

// isolate gives the command a clean environment: its own data dir and no inherited settings.
func isolate(t *testing.T) string {
	dir := t.TempDir()
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "USERS_DB_") || strings.HasPrefix(name, "POSTGRES_") || strings.HasPrefix(name, "MYSQL_") ||
			name == "SECRET_KEY" || strings.HasPrefix(name, "EXPERIMENTAL") {
			t.Setenv(name, "")
			os.Unsetenv(name)
		}
	}
	t.Setenv("MSS_LOGIN_DATA_DIR", dir)
	return dir
}

func TestValidateDefaults(t *testing.T) {
	isolate(t)
	out, _, err := run(t, "config", "validate", "../../config.defaults.json")
	if err != nil {
		t.Fatalf("the shipped defaults must validate: %v", err)
	}
	if !strings.Contains(out, `"blacklist_after_attempts": 10`) {
		t.Fatalf("effective configuration not printed:\n%s", out)
	}
}

func TestValidateRejectsAndRedacts(t *testing.T) {
	dir := isolate(t)
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"users_db": {"postgres_password": "hunter2-in-file", "bogus": 1}, "blacklist_after_attempts": "ten"}`), 0o600)
	_, errOut, err := run(t, "config", "validate", bad)
	if err == nil {
		t.Fatal("a bad file validated")
	}
	for _, want := range []string{"users_db.postgres_password", "users_db.bogus", "blacklist_after_attempts"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error output does not name %s:\n%s", want, errOut)
		}
	}
	if strings.Contains(errOut, "hunter2-in-file") {
		t.Fatal("the password in the file was printed")
	}

	secret := "an-actual-secret-key-value-for-the-redaction-test"
	t.Setenv("SECRET_KEY", secret)
	t.Setenv("USERS_DB_PASSWORD", "db-password-value-9f8e")
	out, errOut, err := run(t, "config", "validate")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out+errOut, secret) || strings.Contains(out+errOut, "db-password-value-9f8e") {
		t.Fatal("a secret reached the output of config validate")
	}
	if !strings.Contains(out, `"SECRET_KEY": "set"`) {
		t.Fatalf("secret presence not reported:\n%s", out)
	}
}

func TestVersion(t *testing.T) {
	out, _, err := run(t, "version")
	if err != nil || !strings.HasPrefix(out, "mss-login ") {
		t.Fatalf("%q %v", out, err)
	}
}

// admin migrate through the configuration, on each backend: first run applies, second is a no-op.
func TestAdminMigrate(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			isolate(t)
			o := useDatabase(t, b)
			out, errOut, err := run(t, "admin", "migrate")
			if err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			if !strings.Contains(out, "applied migrations") {
				t.Fatalf("first migrate: %s", out)
			}
			out, _, err = run(t, "admin", "migrate")
			if err != nil || !strings.Contains(out, "up to date") {
				t.Fatalf("second migrate: %s %v", out, err)
			}
			if o.Password != "" && strings.Contains(out+errOut, o.Password) {
				t.Fatal("the database password was printed")
			}
		})
	}
}

func TestAdminRekeySQLite(t *testing.T) {
	isolate(t)
	path := filepath.Join(t.TempDir(), "users.db")
	t.Setenv("SECRET_KEY", testenv.Secret)
	t.Setenv("USERS_DB_SQLITE_PATH", path)
	t.Setenv("USERS_DB_ENCRYPTION_LEVEL", "low")
	if _, errOut, err := run(t, "admin", "migrate"); err != nil {
		t.Fatal(err, errOut)
	}
	if _, _, err := run(t, "admin", "rekey"); err == nil {
		t.Fatal("rekey with nothing to change succeeded")
	}
	newSecret := "the-new-secret-key-for-the-cli-rekey-test-01"
	t.Setenv(newSecretEnv, newSecret)
	out, errOut, err := run(t, "admin", "rekey", "--level", "standard")
	if err != nil {
		t.Fatalf("%v\n%s", err, errOut)
	}
	if strings.Contains(out+errOut, newSecret) || strings.Contains(out+errOut, testenv.Secret) {
		t.Fatal("a secret was printed")
	}
	// The old settings no longer open the file; the new ones do.
	if _, _, err := run(t, "admin", "migrate"); err == nil {
		t.Fatal("the old key still opens the rekeyed file")
	}
	t.Setenv("SECRET_KEY", newSecret)
	t.Setenv("USERS_DB_ENCRYPTION_LEVEL", "standard")
	if out, errOut, err := run(t, "admin", "migrate"); err != nil || !strings.Contains(out, "up to date") {
		t.Fatalf("new settings: %s %s %v", out, errOut, err)
	}
}

// useDatabase points the command's configuration (environment and config.json) at a fresh
// database of backend b and returns its options.
func useDatabase(t *testing.T, b store.Backend) store.Options {
	o := testenv.Database(t, b)
	t.Setenv("SECRET_KEY", testenv.Secret)
	t.Setenv("USERS_DB_BACKEND", string(b))
	dataDir := os.Getenv("MSS_LOGIN_DATA_DIR")
	switch b {
	case store.SQLite:
		t.Setenv("USERS_DB_SQLITE_PATH", o.SQLitePath)
		t.Setenv("USERS_DB_ENCRYPTION_LEVEL", "low")
		o.EncryptionLevel = "low"
	case store.PostgreSQL:
		t.Setenv("USERS_DB_POSTGRES_HOST", o.Host)
		t.Setenv("USERS_DB_POSTGRES_PORT", strconv.Itoa(o.Port))
		t.Setenv("USERS_DB_POSTGRES_DATABASE", o.Database)
		t.Setenv("USERS_DB_POSTGRES_USER", o.User)
		t.Setenv("POSTGRES_PASSWORD", o.Password)
		os.WriteFile(filepath.Join(dataDir, "config.json"), []byte(`{"users_db": {"postgres_sslmode": "disable"}}`), 0o600)
	case store.MySQL:
		t.Setenv("USERS_DB_MYSQL_HOST", o.Host)
		t.Setenv("USERS_DB_MYSQL_PORT", strconv.Itoa(o.Port))
		t.Setenv("USERS_DB_MYSQL_DATABASE", o.Database)
		t.Setenv("USERS_DB_MYSQL_USER", o.User)
		t.Setenv("MYSQL_PASSWORD", o.Password)
		os.WriteFile(filepath.Join(dataDir, "config.json"), []byte(`{"users_db": {"mysql_tls": "false"}}`), 0o600)
	}
	return o
}

// The break-glass line `mss-login dev` prints works as printed: the data directory and the key
// file it names open the development database.
func TestDevBannerBreakGlassLine(t *testing.T) {
	dir := isolate(t)
	if err := devEnvironment(dir); err != nil {
		t.Fatal(err)
	}
	// The dev auth server would create it, where dev puts it.
	t.Setenv("USERS_DB_SQLITE_PATH", "mss_login_data.db")
	if _, errOut, err := run(t, "admin", "migrate"); err != nil {
		t.Fatal(err, errOut)
	}
	var out bytes.Buffer
	printDevBanner(&globals{stdout: &out}, "127.0.0.1:8080", "http://127.0.0.1:8188", dir, filepath.Join(dir, "mss_login_data.db"),
		"kubeconfig", "assets", "owner", "pw", "webhook")
	var line string
	for _, l := range strings.Split(out.String(), "\n") {
		if strings.Contains(l, "admin users list") {
			line = strings.TrimSpace(l)
		}
	}
	var dataDir, database, keyFile string
	if _, err := fmt.Sscanf(line, `MSS_LOGIN_DATA_DIR=%s USERS_DB_SQLITE_PATH=%s SECRET_KEY="$(cat %s`, &dataDir, &database, &keyFile); err != nil || dataDir != dir {
		t.Fatalf("the banner's break-glass line: %q (%v)", line, err)
	}
	t.Setenv("USERS_DB_SQLITE_PATH", database)
	key, err := os.ReadFile(strings.TrimSuffix(keyFile, `)"`))
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("MSS_LOGIN_DATA_DIR", dataDir)
	t.Setenv("SECRET_KEY", strings.TrimSpace(string(key)))
	if out, errOut, err := run(t, "admin", "users", "list"); err != nil || !strings.Contains(out, "USERNAME") {
		t.Fatalf("the break-glass line does not open the database: %v %s %s", err, out, errOut)
	}
}
