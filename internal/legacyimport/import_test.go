package legacyimport_test

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/legacyimport"
	"github.com/mss-login/mss-login/internal/legacyimport/legacytest"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

const originalSecret = "the-original-secret-key-of-mss-login-0123"

// An original database into each backend: users log in with their passwords, keep their
// roles, the owner, MFA secret and backup code; tokens, bans, allow entries and device locks
// carry over; a second run changes nothing.
func TestImportIntoEachBackend(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := legacytest.Write(t, t.TempDir(), originalSecret)
		if err := s.PutRole(ctx, roles.Role{Name: "artists", Permissions: map[string]bool{roles.CanRun: true}}, ""); err != nil {
			t.Fatal(err)
		}
		d, err := legacyimport.Read(ctx, f.Path, originalSecret)
		if err != nil {
			t.Fatal(err)
		}
		target, err := legacyimport.TargetOf(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		plan := legacyimport.Decide(d, target, now)
		rep, err := legacyimport.Apply(ctx, s, plan, now, 24*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		want := legacyimport.Report{Users: 3, MFA: 1, BackupCodes: 1, Tokens: 1, Bans: 2, Allow: 2, Devices: 1}
		if rep.Users != want.Users || rep.MFA != want.MFA || rep.BackupCodes != want.BackupCodes || rep.Tokens != want.Tokens ||
			rep.Bans != want.Bans || rep.Allow != want.Allow || rep.Devices != want.Devices || len(rep.Problems) != 0 {
			t.Fatalf("report %+v, want %+v", rep, want)
		}

		for name, wantRole := range map[string]string{"boss": roles.Admin, "mia": roles.Power, "ana": "artists"} {
			u, err := s.UserByName(ctx, name)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if u.Role != wantRole || u.Owner != (name == "boss") {
				t.Errorf("%s: role %s owner %v, want %s", name, u.Role, u.Owner, wantRole)
			}
			if r, err := password.Verify(u.PasswordHash, f.Passwords[name]); err != nil || !r.OK {
				t.Errorf("%s: the original password does not verify: %+v %v", name, r, err)
			}
		}
		for _, name := range []string{"guest", "x y"} {
			if _, err := s.UserByName(ctx, name); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("%s was imported: %v", name, err)
			}
		}
		mia, _ := s.UserByName(ctx, "mia")
		if mia.Disabled {
			t.Error("mia stayed disabled after her MFA was stored")
		}
		if sec, err := s.TOTPSecret(ctx, mia.ID); err != nil || sec != f.TOTPSecret || !mia.MFAEnabled {
			t.Errorf("mia's MFA: enabled %v, secret matches %v, %v", mia.MFAEnabled, sec == f.TOTPSecret, err)
		}
		if ok, err := s.ConsumeBackupCode(ctx, mia.ID, legacytest.SHA256Hex(strings.ReplaceAll(f.BackupCode, "-", ""))); err != nil || !ok {
			t.Errorf("mia's backup code: %v %v", ok, err)
		}
		if tok, err := s.APITokenByHash(ctx, legacytest.SHA256Hex(f.Token)); err != nil || tok.UserID != mia.ID || !tok.ExpiresAt.IsZero() || tok.Label != "render farm" {
			t.Errorf("mia's token: %+v %v", tok, err)
		}
		if _, err := s.APITokenByHash(ctx, legacytest.SHA256Hex(f.ExpiredToken)); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the expired token was imported: %v", err)
		}
		bans, _ := s.Bans(ctx, now)
		banned := map[string]time.Time{}
		for _, b := range bans {
			banned[b.CIDR.Addr().String()] = b.ExpiresAt
		}
		if exp, ok := banned["203.0.113.66"]; !ok || exp.Before(now.Add(4*time.Hour)) {
			t.Errorf("the active ban: %v %v", ok, exp)
		}
		if exp, ok := banned["2001:db8::66"]; !ok || !exp.IsZero() {
			t.Errorf("the permanent ban: %v %v", ok, exp)
		}
		if _, ok := banned["203.0.113.67"]; ok {
			t.Error("an expired ban was imported")
		}
		rules, _ := s.IPRules(ctx)
		allowed := map[netip.Prefix]bool{}
		for _, r := range rules {
			if r.Action == store.Allow {
				allowed[r.CIDR] = true
			}
		}
		if !allowed[netip.MustParsePrefix("10.20.0.0/16")] || !allowed[netip.MustParsePrefix("192.0.2.7/32")] || len(allowed) != 2 {
			t.Errorf("allow rules %v", allowed)
		}
		if devs, _ := s.LockedDevices(ctx, now); len(devs) != 1 || devs[0].DeviceID != "device-abc" || devs[0].ExpiresAt.IsZero() {
			t.Errorf("locked devices %+v (the original's never expired; imported ones do)", devs)
		}

		// Again: everything is there already.
		target, _ = legacyimport.TargetOf(ctx, s)
		again, err := legacyimport.Apply(ctx, s, legacyimport.Decide(d, target, now), now, 24*time.Hour)
		if err != nil || again.Users+again.Tokens+again.Bans+again.Allow+again.Devices+again.MFA != 0 {
			t.Fatalf("second import: %+v %v", again, err)
		}
		if users, _ := s.Users(ctx); len(users) != 3 {
			t.Fatalf("%d users after two imports", len(users))
		}
	})
}

func TestReadRefusals(t *testing.T) {
	ctx := context.Background()
	f := legacytest.Write(t, t.TempDir(), originalSecret)

	_, err := legacyimport.Read(ctx, f.Path, "another-secret-key-0123456789-abcdefgh")
	if err == nil || !strings.Contains(err.Error(), "mia") || strings.Contains(err.Error(), "another-secret") || strings.Contains(err.Error(), originalSecret) {
		t.Fatalf("wrong source secret: %v", err)
	}
	if _, err := legacyimport.Read(ctx, f.Path, ""); err == nil || !strings.Contains(err.Error(), "SECRET_KEY") {
		t.Fatalf("no source secret: %v", err)
	}

	enc := filepath.Join(t.TempDir(), "encrypted.db")
	if err := os.WriteFile(enc, []byte("\x8f\x12 SQLCipher pages look like random bytes ..........."), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := legacyimport.Read(ctx, enc, originalSecret); !errors.Is(err, legacyimport.ErrEncrypted) {
		t.Fatalf("encrypted file: %v", err)
	}
	if _, err := legacyimport.Read(ctx, filepath.Join(t.TempDir(), "missing.db"), originalSecret); err == nil {
		t.Fatal("a missing file read without error")
	}
}

// An older original: fewer tables and columns (they were added lazily over time).
func TestReadOlderSchema(t *testing.T) {
	ctx := context.Background()
	f := legacytest.Write(t, t.TempDir(), originalSecret)
	legacytest.Exec(t, f.Path, `DROP TABLE api_tokens; DROP TABLE ip_whitelist; DROP TABLE locked_devices;
		ALTER TABLE users DROP COLUMN backup_code_used; ALTER TABLE users DROP COLUMN sfw_check`)
	d, err := legacyimport.Read(ctx, f.Path, originalSecret)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Users) != 5 || len(d.Tokens) != 0 || len(d.Allow) != 0 || len(d.Devices) != 0 || len(d.Bans) != 3 {
		t.Fatalf("dump of an older file: %d users, %d tokens, %d allow, %d devices, %d bans", len(d.Users), len(d.Tokens), len(d.Allow), len(d.Devices), len(d.Bans))
	}
}

// When the MFA secret cannot be stored (here: a database opened without SECRET_KEY has no
// field key), the user is not left behind with a password only.
func TestImportMFAFailureLeavesNoUser(t *testing.T) {
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{Backend: store.SQLite, SQLitePath: filepath.Join(t.TempDir(), "users.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	f := legacytest.Write(t, t.TempDir(), originalSecret)
	d, err := legacyimport.Read(ctx, f.Path, originalSecret)
	if err != nil {
		t.Fatal(err)
	}
	target, _ := legacyimport.TargetOf(ctx, s)
	if _, err := legacyimport.Apply(ctx, s, legacyimport.Decide(d, target, time.Now()), time.Now(), time.Hour); err == nil || !strings.Contains(err.Error(), "mia") {
		t.Fatalf("apply without a field key: %v", err)
	}
	if _, err := s.UserByName(ctx, "mia"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mia is left behind: %v", err)
	}
}
