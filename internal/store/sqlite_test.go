package store_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/crypt"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

const canary = "plaintext-canary-user"

func encryptedOptions(t *testing.T, level crypt.Level) store.Options {
	return store.Options{Backend: store.SQLite, SQLitePath: filepath.Join(t.TempDir(), "users.db"),
		EncryptionLevel: level, SecretKey: testenv.Secret}
}

// dirBytes returns the contents of every file next to the database (WAL and journal included).
func dirBytes(t *testing.T, dbPath string) []byte {
	t.Helper()
	var all []byte
	entries, _ := os.ReadDir(filepath.Dir(dbPath))
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(filepath.Dir(dbPath), e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, b...)
	}
	return all
}

func writeCanary(t *testing.T, o store.Options) {
	t.Helper()
	s, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	u := store.User{Username: canary, Role: roles.Admin, PasswordHash: "$2b$12$canaryhash"}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMFA(ctx, u.ID, "JBSWY3DPEHPK3PXP", true); err != nil {
		t.Fatal(err)
	}
	s.Close()
}

func TestEncryptedSQLiteHidesContents(t *testing.T) {
	// low is fast; secure (256 MiB Argon2id) is covered once by the rekey test.
	o := encryptedOptions(t, "low")
	writeCanary(t, o)
	if b := dirBytes(t, o.SQLitePath); bytes.Contains(b, []byte(canary)) || bytes.Contains(b, []byte("SQLite format 3")) {
		t.Fatal("the encrypted database files contain plaintext")
	}
	// The same secret and level open it again.
	s := testenv.OpenOptions(t, o)
	if _, err := s.UserByName(ctx, canary); err != nil {
		t.Fatal(err)
	}

	// Control: without encryption the canary is visible, so the check above can fail.
	plain := encryptedOptions(t, "")
	writeCanary(t, plain)
	if !bytes.Contains(dirBytes(t, plain.SQLitePath), []byte(canary)) {
		t.Fatal("control: the unencrypted file should contain the canary")
	}
}

func TestEncryptedSQLiteClearErrors(t *testing.T) {
	o := encryptedOptions(t, "low")
	writeCanary(t, o)

	wrong := o
	wrong.SecretKey = "not-the-secret-key-that-wrote-this-file-000"
	_, err := store.Open(ctx, wrong)
	if err == nil || !strings.Contains(err.Error(), "SECRET_KEY is not the one") {
		t.Fatalf("wrong key: %v", err)
	}
	if strings.Contains(err.Error(), wrong.SecretKey) || strings.Contains(err.Error(), "file is not a database") {
		t.Fatalf("wrong-key error leaks the key or the raw SQLite text: %v", err)
	}

	changed := o
	changed.EncryptionLevel = "standard"
	if _, err := store.Open(ctx, changed); err == nil || !strings.Contains(err.Error(), `encrypted at users_db.encryption_level "low"`) {
		t.Fatalf("changed level: %v", err)
	}

	none := o
	none.EncryptionLevel = ""
	if _, err := store.Open(ctx, none); err == nil || !strings.Contains(err.Error(), "encryption_level is empty") {
		t.Fatalf("encrypted file opened as plain: %v", err)
	}

	plain := encryptedOptions(t, "")
	writeCanary(t, plain)
	plain.EncryptionLevel = "low"
	if _, err := store.Open(ctx, plain); err == nil || !strings.Contains(err.Error(), "not encrypted") {
		t.Fatalf("plain file opened as encrypted: %v", err)
	}

	noSecret := o
	noSecret.SecretKey = ""
	if _, err := store.Open(ctx, noSecret); err == nil || !strings.Contains(err.Error(), "SECRET_KEY") {
		t.Fatalf("no secret: %v", err)
	}
}

func TestRekeyKeepsEveryRow(t *testing.T) {
	o := encryptedOptions(t, "low")
	writeCanary(t, o)
	s := testenv.OpenOptions(t, o)
	for _, name := range []string{"rekey_a", "rekey_b", "rekey_c"} {
		mustUser(t, s, name, false)
	}
	if err := s.SetSecretSetting(ctx, "s3.secret", "bucket-secret"); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Users(ctx)
	s.Close()

	// New secret and a stronger level, then back to an unencrypted file, then encrypted again.
	steps := []struct {
		secret string
		level  crypt.Level
	}{
		{"the-second-secret-key-for-rekeying-0000", "secure"},
		{"the-second-secret-key-for-rekeying-0000", ""},
		{testenv.Secret, "standard"},
	}
	cur := o
	for _, st := range steps {
		if err := store.RekeySQLite(ctx, cur, st.secret, st.level); err != nil {
			t.Fatalf("rekey to %q: %v", st.level, err)
		}
		cur.SecretKey, cur.EncryptionLevel = st.secret, st.level
		if _, err := store.Open(ctx, o); err == nil && st.level != o.EncryptionLevel {
			t.Fatalf("the old key still opens the file after rekey to %q", st.level)
		}
		s2 := testenv.OpenOptions(t, cur)
		after, _ := s2.Users(ctx)
		if len(after) != len(before) {
			t.Fatalf("rekey to %q kept %d of %d users", st.level, len(after), len(before))
		}
		u, _ := s2.UserByName(ctx, canary)
		if v, err := s2.TOTPSecret(ctx, u.ID); v != "JBSWY3DPEHPK3PXP" {
			t.Fatalf("TOTP after rekey to %q: %q %v", st.level, v, err)
		}
		if v, _, err := s2.SecretSetting(ctx, "s3.secret"); v != "bucket-secret" {
			t.Fatalf("secret setting after rekey to %q: %q %v", st.level, v, err)
		}
		if rs, _ := s2.Roles(ctx); len(rs) != len(roles.Builtin) {
			t.Fatalf("roles after rekey: %d", len(rs))
		}
		s2.Close()
		if st.level != "" && bytes.Contains(dirBytes(t, o.SQLitePath), []byte(canary)) {
			t.Fatalf("plaintext after rekey to %q", st.level)
		}
	}
	if _, err := os.Stat(o.SQLitePath + ".before-rekey"); !os.IsNotExist(err) {
		t.Fatal("the backup of the old file was left behind")
	}
}

// The database file and its -wal and -shm files are private (0600), encrypted or not, however
// permissive the umask.
func TestSQLiteFilesArePrivate(t *testing.T) {
	for _, level := range []crypt.Level{"", "low"} {
		o := encryptedOptions(t, level)
		s := testenv.OpenOptions(t, o)
		u := store.User{Username: "perm", Role: roles.User, PasswordHash: "$2b$12$x"}
		if err := s.CreateUser(ctx, &u); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{o.SQLitePath, o.SQLitePath + "-wal", o.SQLitePath + "-shm"} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("level %q: %v", level, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("level %q: %s is %v, want 0600", level, filepath.Base(p), fi.Mode().Perm())
			}
		}
	}
}
