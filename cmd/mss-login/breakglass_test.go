package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func TestBreakGlass(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			isolate(t)
			o := useDatabase(t, b)
			if _, errOut, err := run(t, "admin", "migrate"); err != nil {
				t.Fatal(err, errOut)
			}
			ctx := context.Background()
			s, err := store.Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			u := store.User{Username: "gail", Role: roles.User, PasswordHash: "$2b$12$abcdefghijklmnopqrstuuK2V8S4Eh5kW3WcS1p5dB3s9yPj9cC6",
				OwnerRef: "ComfyUser/team/gail"}
			if err := s.CreateUser(ctx, &u); err != nil {
				t.Fatal(err)
			}
			now := time.Now()
			ip := netip.MustParseAddr("198.51.100.23")
			if _, err := s.BanIP(ctx, ip, now, now.Add(time.Hour), "10 failed attempts"); err != nil {
				t.Fatal(err)
			}
			_, _ = s.LockDevice(ctx, "dev-77", now, now.Add(time.Hour), "banned with 198.51.100.23")

			out, _, err := run(t, "admin", "users", "list")
			if err != nil || !strings.Contains(out, "gail") || !strings.Contains(out, "ComfyUser/team/gail") {
				t.Fatalf("users list: %v\n%s", err, out)
			}

			var stdout, stderr bytes.Buffer
			root := newRoot(&stdout, &stderr)
			root.SetIn(strings.NewReader("Brand-new-pass-9!\n"))
			root.SetArgs([]string{"admin", "users", "set-password", "gail"})
			if err := root.ExecuteContext(ctx); err != nil {
				t.Fatalf("set-password: %v %s", err, stderr.String())
			}
			if strings.Contains(stdout.String()+stderr.String(), "Brand-new-pass-9!") {
				t.Fatal("the password was printed")
			}
			if !strings.Contains(stdout.String(), "managed by ComfyUser team/gail") {
				t.Fatalf("no note about the owning resource: %s", stdout.String())
			}
			got, _ := s.UserByName(ctx, "gail")
			if r, _ := password.Verify(got.PasswordHash, "Brand-new-pass-9!"); !r.OK {
				t.Fatal("the new password does not verify")
			}

			if _, _, err := run(t, "admin", "users", "disable", "gail"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.UserByName(ctx, "gail"); !got.Disabled {
				t.Fatal("not disabled")
			}

			out, _, _ = run(t, "admin", "lockouts", "list")
			if !strings.Contains(out, "198.51.100.23") || !strings.Contains(out, "dev-77") {
				t.Fatalf("lockouts list:\n%s", out)
			}
			for _, subject := range []string{"198.51.100.23", "dev-77"} {
				if _, errOut, err := run(t, "admin", "lockouts", "unlock", subject); err != nil {
					t.Fatalf("unlock %s: %v %s", subject, err, errOut)
				}
			}
			if bans, _ := s.Bans(ctx, time.Now()); len(bans) != 0 {
				t.Fatalf("ban left after unlock: %v", bans)
			}
			// An address that is not banned: its failures are still forgotten, and the command
			// says so and succeeds; a device that is not locked changes nothing and fails.
			if out, _, err := run(t, "admin", "lockouts", "unlock", "198.51.100.23"); err != nil || !strings.Contains(out, "was not banned; its failed logins") {
				t.Fatalf("unlocking an address that is not banned: %v %q", err, out)
			}
			if _, errOut, err := run(t, "admin", "lockouts", "unlock", "dev-77"); err == nil || !strings.Contains(err.Error()+errOut, "nothing changed") {
				t.Fatalf("unlocking a device that is not locked: %v %s", err, errOut)
			}

			if err := s.SetMFA(ctx, u.ID, "JBSWY3DPEHPK3PXP", true); err != nil {
				t.Fatal(err)
			}
			if _, _, err := run(t, "admin", "reset-mfa", "gail"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.UserByName(ctx, "gail"); got.MFAEnabled {
				t.Fatal("MFA still enabled")
			}
			if log, _ := s.AuditLog(ctx, 10); len(log) < 4 || log[0].Actor != "admin-cli" {
				t.Fatalf("break-glass actions are not audited: %+v", log)
			}
			// The audit trail from the command line: what each action above wrote, as JSON lines
			// and as a table, filtered, a page at a time.
			out, errOut, err := run(t, "admin", "audit", "list", "--json", "--user", "admin-cli")
			if err != nil {
				t.Fatal(err, errOut)
			}
			var actions []string
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				var e store.AuditEvent
				if err := json.Unmarshal([]byte(line), &e); err != nil {
					t.Fatalf("not a JSON line: %q", line)
				}
				actions = append(actions, e.Action+" "+e.Target)
			}
			for _, want := range []string{"password.reset gail", "mfa.reset gail"} {
				if !slices.Contains(actions, want) {
					t.Errorf("audit list --json: %q lacks %q", actions, want)
				}
			}
			out, _, err = run(t, "admin", "audit", "list", "--action", "password.*", "--limit", "1")
			if err != nil || !strings.Contains(out, "password.reset") || strings.Contains(out, "mfa.reset") || !strings.Contains(out, "ACTION") {
				t.Errorf("audit list --action password.*: %v\n%s", err, out)
			}
			if _, errOut, err := run(t, "admin", "audit", "list", "--since", "yesterday"); err == nil || !strings.Contains(err.Error()+errOut, "--since") {
				t.Errorf("a bad --since: %v %s", err, errOut)
			}
		})
	}
}
