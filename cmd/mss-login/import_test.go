package main

import (
	"context"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/legacyimport/legacytest"
	"github.com/mss-login/mss-login/internal/store"
)

// `mss-login admin import`: a dry run writes nothing, the import prints what it did and never
// a secret, and an imported user's hash verifies (the package test covers every backend and row).
func TestAdminImport(t *testing.T) {
	isolate(t)
	o := useDatabase(t, store.SQLite)
	const orig = "original-secret-key-for-the-import-test-01"
	t.Setenv("ORIGINAL_SECRET_KEY", orig)
	f := legacytest.Write(t, t.TempDir(), orig)

	out, errOut, err := run(t, "admin", "import", f.Path, "--source-secret-key-env", "ORIGINAL_SECRET_KEY", "--dry-run")
	if err != nil {
		t.Fatalf("dry run: %v %s", err, errOut)
	}
	for _, want := range []string{"boss", "mia", `role "artists" does not exist here, so user`, "is reserved", "dry run: 1 API tokens, 2 bans, 2 allow-list entries, 1 locked devices"} {
		if !strings.Contains(out, want) {
			t.Errorf("dry-run output lacks %q:\n%s", want, out)
		}
	}
	ctx := context.Background()
	s, err := store.Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n, _ := s.CountUsers(ctx); n != 0 {
		t.Fatalf("the dry run wrote %d users", n)
	}

	out, errOut, err = run(t, "admin", "import", f.Path, "--source-secret-key-env", "ORIGINAL_SECRET_KEY")
	if err != nil {
		t.Fatalf("import: %v %s", err, errOut)
	}
	if !strings.Contains(out, "3 users (1 with MFA, 1 backup codes), 1 API tokens, 2 bans, 2 allow-list entries, 1 locked devices") ||
		!strings.Contains(out, "allow-list mode") {
		t.Errorf("import output:\n%s", out)
	}
	for _, secret := range []string{orig, f.TOTPSecret, f.Token, f.BackupCode, f.Passwords["mia"]} {
		if strings.Contains(out+errOut, secret) {
			t.Fatal("the import printed a secret")
		}
	}
	if u, err := s.UserByName(ctx, "ana"); err != nil || u.Role != "user" {
		t.Fatalf("ana: %+v %v", u, err)
	}

	// Without the original's key the MFA secret cannot be read: nothing is written.
	t.Setenv("ORIGINAL_SECRET_KEY", "a-wrong-key-0123456789-0123456789-abcdef")
	if _, _, err := run(t, "admin", "import", f.Path, "--source-secret-key-env", "ORIGINAL_SECRET_KEY"); err == nil || !strings.Contains(err.Error(), "mia") {
		t.Fatalf("wrong key: %v", err)
	}
}
