package store_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/netaddr"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

var ctx = context.Background()

func mustUser(t *testing.T, s *store.Store, name string, owner bool) store.User {
	t.Helper()
	u := store.User{Username: name, Role: roles.User, PasswordHash: "$2b$12$abcdefghijklmnopqrstuuK2V8S4Eh5kW3WcS1p5dB3s9yPj9cC6", Owner: owner}
	if err := s.CreateUser(ctx, &u); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return u
}

func TestMigrations(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			o := testenv.Database(t, b)
			s, err := store.Open(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if v, _ := s.SchemaVersion(ctx); v != 0 {
				t.Fatalf("empty database at version %d", v)
			}
			applied, err := s.Migrate(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if len(applied) != store.LatestVersion() {
				t.Fatalf("applied %v from empty, want all %d", applied, store.LatestVersion())
			}
			again, err := s.Migrate(ctx)
			if err != nil || len(again) != 0 {
				t.Fatalf("second migrate applied %v, %v; want nothing", again, err)
			}
			rs, err := s.Roles(ctx)
			if err != nil || len(rs) != len(roles.Builtin) {
				t.Fatalf("built-in roles after migrate: %d, %v", len(rs), err)
			}
			admin, _ := s.Role(ctx, roles.Admin)
			if !admin.Builtin || !admin.Permissions[roles.CanSeeRestrictedSettings] || admin.Permissions[roles.CanHaveNonExpiringJWT] {
				t.Fatalf("admin role not seeded with the original defaults: %+v", admin)
			}
		})
	}
}

func TestMigrateFromEachEarlierVersion(t *testing.T) {
	for _, b := range testenv.Backends {
		for from := 1; from < store.LatestVersion(); from++ {
			t.Run(fmt.Sprintf("%s/from-%d", b, from), func(t *testing.T) {
				s, err := store.Open(ctx, testenv.Database(t, b))
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				if _, err := s.MigrateTo(ctx, from); err != nil {
					t.Fatal(err)
				}
				if v, _ := s.SchemaVersion(ctx); v != from {
					t.Fatalf("at version %d, want %d", v, from)
				}
				applied, err := s.Migrate(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(applied) != store.LatestVersion()-from {
					t.Fatalf("applied %v from %d", applied, from)
				}
				if v, _ := s.SchemaVersion(ctx); v != store.LatestVersion() {
					t.Fatalf("ended at %d", v)
				}
			})
		}
	}
}

// Several processes starting at once: each with its own pool, all migrating together.
func TestConcurrentMigrations(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			o := testenv.Database(t, b)
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s, err := store.Open(ctx, o)
					if err != nil {
						errs <- err
						return
					}
					defer s.Close()
					_, err = s.Migrate(ctx)
					errs <- err
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			s := testenv.OpenOptions(t, o)
			if rs, _ := s.Roles(ctx); len(rs) != len(roles.Builtin) {
				t.Fatalf("%d roles after concurrent migrations", len(rs))
			}
		})
	}
}

func TestUsers(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		if n, _ := s.CountUsers(ctx); n != 0 {
			t.Fatalf("fresh database has %d users", n)
		}
		alice := mustUser(t, s, "alice", true)
		got, err := s.UserByName(ctx, "alice")
		if err != nil || got.ID != alice.ID || !got.Owner || got.Role != roles.User || got.PasswordHash != alice.PasswordHash {
			t.Fatalf("read back %+v, %v", got, err)
		}
		if got.CreatedAt.IsZero() || got.CreatedAt.Location() != time.UTC {
			t.Fatalf("created_at %v must be set and UTC", got.CreatedAt)
		}
		if _, err := s.UserByName(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("missing user: %v", err)
		}
		dup := store.User{Username: "ALICE", Role: roles.User}
		if err := s.CreateUser(ctx, &dup); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("case-insensitive duplicate: %v", err)
		}
		bob := mustUser(t, s, "bob", false)
		second := store.User{Username: "carol", Role: roles.Admin, Owner: true}
		if err := s.CreateUser(ctx, &second); !errors.Is(err, store.ErrOwnerTaken) {
			t.Fatalf("second owner: %v", err)
		}
		bob.Owner = true
		if err := s.UpdateUser(ctx, bob); !errors.Is(err, store.ErrOwnerTaken) {
			t.Fatalf("second owner by update: %v", err)
		}
		// Ownership moves by clearing the old owner first.
		alice.Owner = false
		if err := s.UpdateUser(ctx, alice); err != nil {
			t.Fatal(err)
		}
		if err := s.UpdateUser(ctx, bob); err != nil {
			t.Fatalf("transfer ownership: %v", err)
		}
		if err := s.SetPasswordHash(ctx, bob.ID, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA"); err != nil {
			t.Fatal(err)
		}
		b2, _ := s.UserByID(ctx, bob.ID)
		if !strings.HasPrefix(b2.PasswordHash, "$argon2id$") || b2.PasswordChangedAt.IsZero() {
			t.Fatalf("password not replaced: %+v", b2)
		}
		users, err := s.Users(ctx)
		if err != nil || len(users) != 2 || users[0].Username != "alice" {
			t.Fatalf("list: %v, %v", users, err)
		}
		if err := s.DeleteUser(ctx, alice.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.DeleteUser(ctx, alice.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second delete: %v", err)
		}
	})
}

func TestDisablingRevokesCredentials(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		u := mustUser(t, s, "dora", false)
		sess := store.Session{JTI: "jti-1", UserID: u.ID, ClientIP: "192.0.2.1"}
		if err := s.CreateSession(ctx, &sess); err != nil {
			t.Fatal(err)
		}
		tok := store.APIToken{TokenHash: strings.Repeat("ab", 32), UserID: u.ID, Label: "krita"}
		if err := s.CreateAPIToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
		before, _ := s.Versions(ctx)
		u.Disabled = true
		if err := s.UpdateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		got, _ := s.Session(ctx, "jti-1")
		gt, _ := s.APITokenByHash(ctx, tok.TokenHash)
		if got.RevokedAt.IsZero() || gt.RevokedAt.IsZero() {
			t.Fatalf("disabled user keeps credentials: session %+v token %+v", got, gt)
		}
		after, _ := s.Versions(ctx)
		if after[store.TopicSessions] <= before[store.TopicSessions] || after[store.TopicUsers] <= before[store.TopicUsers] {
			t.Fatalf("change counters did not move: %v → %v", before, after)
		}
		// Deleting the user removes its rows (foreign keys cascade on every backend).
		if err := s.DeleteUser(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Session(ctx, "jti-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session outlived its user: %v", err)
		}
	})
}

func TestRoles(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		custom := roles.Role{Name: "artist", Permissions: map[string]bool{roles.CanRun: true, roles.CanUpload: false},
			UI: map[string]bool{"ui_queue": true}}
		if err := s.PutRole(ctx, custom, "ComfyRole/studio/artist"); err != nil {
			t.Fatal(err)
		}
		r, err := s.Role(ctx, "artist")
		if err != nil || r.Builtin || r.OwnerRef != "ComfyRole/studio/artist" || !r.Permissions[roles.CanRun] || !r.UI["ui_queue"] {
			t.Fatalf("custom role: %+v, %v", r, err)
		}
		if err := s.PutRole(ctx, roles.Role{Name: "bad", Permissions: map[string]bool{"can_fly": true}}, ""); err == nil {
			t.Fatal("unknown permission stored")
		}
		// Override a built-in role, then delete the override: the defaults come back.
		override := roles.Role{Name: roles.User, Permissions: map[string]bool{roles.CanRun: false}}
		if err := s.PutRole(ctx, override, "ComfyRole/studio/user"); err != nil {
			t.Fatal(err)
		}
		if r, _ := s.Role(ctx, roles.User); r.Permissions[roles.CanRun] || !r.Builtin {
			t.Fatalf("override not applied: %+v", r)
		}
		if err := s.DeleteRole(ctx, roles.User); err != nil {
			t.Fatal(err)
		}
		def, _ := roles.Default(roles.User)
		if r, _ := s.Role(ctx, roles.User); !r.Permissions[roles.CanRun] || r.OwnerRef != "" || len(r.Permissions) != len(def.Permissions) {
			t.Fatalf("built-in not restored: %+v", r)
		}
		if err := s.DeleteRole(ctx, "artist"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Role(ctx, "artist"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted role: %v", err)
		}
	})
}

func TestTokensAndSessions(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		u := mustUser(t, s, "erin", false)
		other := mustUser(t, s, "frank", false)
		exp := time.Now().Add(720 * time.Hour).UTC().Truncate(time.Millisecond)
		tok := store.APIToken{TokenHash: strings.Repeat("cd", 32), UserID: u.ID, Label: "script", ExpiresAt: exp}
		before, _ := s.Versions(ctx)
		if err := s.CreateAPIToken(ctx, &tok); err != nil {
			t.Fatal(err)
		}
		if after, _ := s.Versions(ctx); after[store.TopicSessions] != before[store.TopicSessions]+1 {
			t.Fatal("creating a token must move the sessions counter (auth servers cache tokens)")
		}
		forever := store.APIToken{TokenHash: strings.Repeat("ef", 32), UserID: u.ID}
		if err := s.CreateAPIToken(ctx, &forever); err != nil {
			t.Fatal(err)
		}
		got, err := s.APITokenByHash(ctx, tok.TokenHash)
		if err != nil || got.ID != tok.ID || !got.ExpiresAt.Equal(exp) || got.Label != "script" {
			t.Fatalf("token read back: %+v, %v", got, err)
		}
		if f, _ := s.APITokenByHash(ctx, forever.TokenHash); !f.ExpiresAt.IsZero() {
			t.Fatalf("never-expiring token got expiry %v", f.ExpiresAt)
		}
		if list, _ := s.APITokens(ctx, u.ID); len(list) != 2 {
			t.Fatalf("own tokens: %d", len(list))
		}
		if err := s.RevokeAPIToken(ctx, tok.ID, other.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("another user revoked my token: %v", err)
		}
		if err := s.RevokeAPIToken(ctx, tok.ID, u.ID); err != nil {
			t.Fatal(err)
		}
		used := time.Now().UTC().Truncate(time.Millisecond)
		if err := s.TouchAPITokens(ctx, map[string]time.Time{forever.ID: used}); err != nil {
			t.Fatal(err)
		}
		if f, _ := s.APITokenByHash(ctx, forever.TokenHash); !f.LastUsedAt.Equal(used) {
			t.Fatalf("last used %v, want %v", f.LastUsedAt, used)
		}

		for i := range 3 {
			x := store.Session{JTI: fmt.Sprintf("s%d", i), UserID: u.ID, ExpiresAt: exp}
			if err := s.CreateSession(ctx, &x); err != nil {
				t.Fatal(err)
			}
		}
		since := time.Now().Add(-time.Second)
		if err := s.RevokeSession(ctx, "s0", u.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.RevokeSession(ctx, "s0", u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("revoking twice: %v", err)
		}
		revoked, _ := s.RevokedSessionsSince(ctx, since)
		if len(revoked) != 1 || revoked[0] != "s0" {
			t.Fatalf("revoked since: %v", revoked)
		}
		if err := s.RevokeUserCredentials(ctx, u.ID); err != nil {
			t.Fatal(err)
		}
		list, _ := s.Sessions(ctx, u.ID)
		for _, x := range list {
			if x.RevokedAt.IsZero() {
				t.Fatalf("session %s survived revoke-all", x.JTI)
			}
		}
	})
}

func TestIPRulesAndBans(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		now := time.Now().UTC()
		for _, c := range []string{"10.0.0.0/8", "2001:db8::/32", "192.0.2.7"} {
			p, err := netaddr.ParsePrefix(c)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.AddIPRule(ctx, store.IPRule{CIDR: p, Action: store.Allow, Source: store.SourceResource, OwnerRef: "IPRule/ns/office"}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := netaddr.ParsePrefix("10.0.0.300/8"); err == nil {
			t.Fatal("bad CIDR parsed")
		}
		rules, _ := s.IPRulesOwnedBy(ctx, "IPRule/ns/office")
		if len(rules) != 3 || rules[2].CIDR.String() != "192.0.2.7/32" {
			t.Fatalf("rules: %v", rules)
		}
		addr := netip.MustParseAddr("198.51.100.9")
		created, err := s.BanIP(ctx, addr, now, now.Add(time.Hour), "10 failed logins")
		if err != nil || !created {
			t.Fatalf("first ban: %v %v", created, err)
		}
		if again, _ := s.BanIP(ctx, addr, now, now.Add(time.Hour), "again"); again {
			t.Fatal("a live ban was created twice")
		}
		bans, _ := s.Bans(ctx, now)
		if len(bans) != 1 || bans[0].CIDR.Addr() != addr || bans[0].Reason != "10 failed logins" {
			t.Fatalf("bans: %+v", bans)
		}
		// Once expired it no longer counts, and a new ban is created again.
		later := now.Add(2 * time.Hour)
		if bans, _ := s.Bans(ctx, later); len(bans) != 0 {
			t.Fatalf("expired ban still active: %v", bans)
		}
		if renewed, _ := s.BanIP(ctx, addr, later, later.Add(time.Hour), "renewed"); !renewed {
			t.Fatal("expired ban not renewed")
		}
		if err := s.Unban(ctx, addr); err != nil {
			t.Fatal(err)
		}
		if bans, _ := s.Bans(ctx, later); len(bans) != 0 {
			t.Fatalf("unbanned address still banned: %v", bans)
		}
		// Resource rules go with their resource; expired rules are purged.
		p, _ := netaddr.ParsePrefix("203.0.113.0/24")
		if _, err := s.AddIPRule(ctx, store.IPRule{CIDR: p, Action: store.Deny, Source: store.SourceManual, ExpiresAt: now.Add(-time.Minute)}); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.PurgeExpiredIPRules(ctx, now); n != 1 {
			t.Fatalf("purged %d, want 1", n)
		}
		if err := s.DeleteIPRulesOwnedBy(ctx, "IPRule/ns/office"); err != nil {
			t.Fatal(err)
		}
		if all, _ := s.IPRules(ctx); len(all) != 0 {
			t.Fatalf("rules left after unban, purge and owner delete: %v", all)
		}

		// Devices lock with an expiry, unlike the original's permanent locks.
		created, err = s.LockDevice(ctx, "device-abc", now, now.Add(time.Hour), "banned with 198.51.100.9")
		if err != nil || !created {
			t.Fatal(created, err)
		}
		if d, _ := s.LockedDevices(ctx, now); len(d) != 1 || d[0].ExpiresAt.IsZero() {
			t.Fatalf("locked devices: %v", d)
		}
		if d, _ := s.LockedDevices(ctx, now.Add(2*time.Hour)); len(d) != 0 {
			t.Fatalf("device lock did not expire: %v", d)
		}
		if err := s.UnlockDevice(ctx, "device-abc"); err != nil {
			t.Fatal(err)
		}
	})
}

// 50 goroutines over two separate pools (two processes) count failures for one IP: every
// attempt is counted exactly once, and one ban is created however many try at once.
func TestConcurrentFailuresAndOneBan(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			o := testenv.Database(t, b)
			s1 := testenv.OpenOptions(t, o)
			s2 := testenv.OpenOptions(t, o)
			now := time.Now().UTC()
			addr := netip.MustParseAddr("2001:db8::42")
			var (
				wg      sync.WaitGroup
				mu      sync.Mutex
				seen    = map[int]bool{}
				created int
			)
			for i := range 50 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					s := []*store.Store{s1, s2}[i%2]
					n, err := s.RecordFailure(ctx, store.ScopeIP, addr.String(), now, time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					c, err := s.BanIP(ctx, addr, now, now.Add(time.Hour), "storm")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if seen[n] {
						t.Errorf("count %d returned twice", n)
					}
					seen[n] = true
					if c {
						created++
					}
				}()
			}
			wg.Wait()
			if n, _ := s1.Failures(ctx, store.ScopeIP, addr.String(), now, time.Hour); n != 50 {
				t.Fatalf("counted %d failures, want 50", n)
			}
			if len(seen) != 50 {
				t.Fatalf("%d distinct counts, want 50", len(seen))
			}
			if created != 1 {
				t.Fatalf("ban created %d times, want once", created)
			}
			if bans, _ := s2.Bans(ctx, now); len(bans) != 1 {
				t.Fatalf("%d ban rows, want 1", len(bans))
			}
		})
	}
}

// 60 attempts over two pools (two processes) for one address, each admitted only while fewer
// than 3 failures are counted: exactly 3 are admitted, each with its own count, and the refused
// ones change nothing — not the count, not the time of the last failure.
func TestAdmitAttemptIsOneCompareAndSwap(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			o := testenv.Database(t, b)
			s1, s2 := testenv.OpenOptions(t, o), testenv.OpenOptions(t, o)
			t0 := time.Now().UTC().Truncate(time.Millisecond)
			refuse := func(failures int, _ time.Time) bool { return failures >= 3 }
			var (
				wg       sync.WaitGroup
				mu       sync.Mutex
				admitted = map[int]bool{}
			)
			for i := range 60 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					n, ok, err := []*store.Store{s1, s2}[i%2].AdmitAttempt(ctx, store.ScopeIP, "192.0.2.7", t0, time.Hour, refuse)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					defer mu.Unlock()
					if ok {
						if admitted[n] {
							t.Errorf("count %d admitted twice", n)
						}
						admitted[n] = true
					} else if n != 3 {
						t.Errorf("refused with count %d, want 3", n)
					}
				}()
			}
			wg.Wait()
			if len(admitted) != 3 || !admitted[1] || !admitted[2] || !admitted[3] {
				t.Fatalf("admitted %v, want 1, 2 and 3", admitted)
			}
			later := t0.Add(time.Minute)
			var seenLast time.Time
			n, ok, err := s1.AdmitAttempt(ctx, store.ScopeIP, "192.0.2.7", later, time.Hour, func(f int, last time.Time) bool {
				seenLast = last
				return true
			})
			if err != nil || ok || n != 3 || !seenLast.Equal(t0) {
				t.Fatalf("a refused attempt: %d %t %v, last failure %v; want 3, refused, last %v", n, ok, err, seenLast, t0)
			}
			if c, last, _ := s2.FailureState(ctx, store.ScopeIP, "192.0.2.7", later, time.Hour); c != 3 || !last.Equal(t0) {
				t.Fatalf("refusals moved the state: %d at %v", c, last)
			}
			// After the window the count starts over, and the refusal sees no failures.
			n, ok, err = s1.AdmitAttempt(ctx, store.ScopeIP, "192.0.2.7", t0.Add(2*time.Hour), time.Hour, refuse)
			if err != nil || !ok || n != 1 {
				t.Fatalf("after the window: %d %t %v", n, ok, err)
			}
			if _, _, err := s1.AdmitAttempt(ctx, "planet", "x", t0, time.Hour, refuse); err == nil {
				t.Fatal("unknown scope accepted")
			}
			// Lifting a ban forgets the address's failures.
			if err := s1.Unban(ctx, netip.MustParseAddr("192.0.2.7")); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("unban without a ban: %v", err)
			}
			if c, _, _ := s1.FailureState(ctx, store.ScopeIP, "192.0.2.7", t0.Add(2*time.Hour), time.Hour); c != 0 {
				t.Fatalf("%d failures after the ban was lifted", c)
			}
		})
	}
}

func TestFailureWindow(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Now().UTC()
		for i := 1; i <= 3; i++ {
			n, err := s.RecordFailure(ctx, store.ScopeUser, "alice", t0.Add(time.Duration(i)*time.Minute), 10*time.Minute)
			if err != nil || n != i {
				t.Fatalf("failure %d counted as %d, %v", i, n, err)
			}
		}
		// Outside the window the count starts over.
		n, _ := s.RecordFailure(ctx, store.ScopeUser, "alice", t0.Add(30*time.Minute), 10*time.Minute)
		if n != 1 {
			t.Fatalf("after the window: %d, want 1", n)
		}
		if err := s.ResetFailures(ctx, store.ScopeUser, "alice"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.Failures(ctx, store.ScopeUser, "alice", t0.Add(30*time.Minute), 10*time.Minute); n != 0 {
			t.Fatalf("after reset: %d", n)
		}
		if _, err := s.RecordFailure(ctx, "planet", "x", t0, time.Minute); err == nil {
			t.Fatal("unknown scope accepted")
		}
	})
}

func TestChallengesAndBackupCodesAreUsedOnce(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		u := mustUser(t, s, "gina", false)
		now := time.Now().UTC()
		id := strings.Repeat("0f", 32)
		if err := s.CreateChallenge(ctx, store.Challenge{ID: id, UserID: u.ID, Purpose: "login", ExpiresAt: now.Add(5 * time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins := 0
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := s.ConsumeChallenge(ctx, id, now)
				if err == nil {
					mu.Lock()
					wins++
					mu.Unlock()
					if c.UserID != u.ID || c.Purpose != "login" {
						t.Errorf("consumed %+v", c)
					}
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if wins != 1 {
			t.Fatalf("challenge consumed %d times", wins)
		}
		late := strings.Repeat("1e", 32)
		_ = s.CreateChallenge(ctx, store.Challenge{ID: late, UserID: u.ID, Purpose: "login", ExpiresAt: now.Add(time.Minute)})
		if _, err := s.ConsumeChallenge(ctx, late, now.Add(2*time.Minute)); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("expired challenge consumed: %v", err)
		}

		codes := []string{strings.Repeat("aa", 32), strings.Repeat("bb", 32)}
		if err := s.SetBackupCodes(ctx, u.ID, codes); err != nil {
			t.Fatal(err)
		}
		ok, err := s.ConsumeBackupCode(ctx, u.ID, codes[1])
		if err != nil || !ok {
			t.Fatalf("first use: %v %v", ok, err)
		}
		if ok, _ := s.ConsumeBackupCode(ctx, u.ID, codes[1]); ok {
			t.Fatal("backup code used twice")
		}
		if ok, _ := s.ConsumeBackupCode(ctx, u.ID, strings.Repeat("cc", 32)); ok {
			t.Fatal("unknown backup code accepted")
		}
		// A TOTP step is claimed once: a replayed code is refused.
		if ok, _ := s.ClaimTOTPStep(ctx, u.ID, 1000); !ok {
			t.Fatal("first step refused")
		}
		if ok, _ := s.ClaimTOTPStep(ctx, u.ID, 1000); ok {
			t.Fatal("replayed step accepted")
		}
	})
}

func TestEncryptedFieldsAndSettings(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			o := testenv.Database(t, b)
			s := testenv.OpenOptions(t, o)
			u := mustUser(t, s, "hana", false)
			if err := s.SetMFA(ctx, u.ID, "JBSWY3DPEHPK3PXP", true); err != nil {
				t.Fatal(err)
			}
			if err := s.SetSecretSetting(ctx, "s3.secret_access_key", "s3-secret-value"); err != nil {
				t.Fatal(err)
			}
			if err := s.SetSetting(ctx, "host_base_url", "https://comfy.example.com"); err != nil {
				t.Fatal(err)
			}
			if v, ok, _ := s.Setting(ctx, "host_base_url"); !ok || v != "https://comfy.example.com" {
				t.Fatalf("plain setting %q", v)
			}
			if _, _, err := s.Setting(ctx, "s3.secret_access_key"); err == nil {
				t.Fatal("an encrypted setting was returned as plain text")
			}
			if v, _ := s.TOTPSecret(ctx, u.ID); v != "JBSWY3DPEHPK3PXP" {
				t.Fatalf("TOTP secret %q", v)
			}

			// A new SECRET_KEY: every encrypted field is re-sealed and still readable.
			newSecret := "a-brand-new-secret-key-for-the-rekey-test-0001"
			if err := s.ReencryptFields(ctx, newSecret); err != nil {
				t.Fatal(err)
			}
			o2 := o
			o2.SecretKey = newSecret
			s2 := testenv.OpenOptions(t, o2)
			if v, _ := s2.TOTPSecret(ctx, u.ID); v != "JBSWY3DPEHPK3PXP" {
				t.Fatalf("TOTP secret after re-encryption %q", v)
			}
			if v, ok, err := s2.SecretSetting(ctx, "s3.secret_access_key"); !ok || v != "s3-secret-value" {
				t.Fatalf("secret setting after re-encryption %q %v", v, err)
			}
			// The old secret no longer opens them.
			if _, err := s.TOTPSecret(ctx, u.ID); err == nil {
				t.Fatal("old secret still decrypts")
			}
			// Without a secret nothing encrypted is read or written.
			o3 := o
			o3.SecretKey = ""
			s3 := testenv.OpenOptions(t, o3)
			if _, err := s3.TOTPSecret(ctx, u.ID); !errors.Is(err, store.ErrNoSecret) {
				t.Fatalf("no secret: %v", err)
			}
		})
	}
}

func TestAuditLog(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		for _, a := range []string{"login.failure", "login.success", "token.created"} {
			if err := s.Audit(ctx, store.AuditEvent{Actor: "ivy", Action: a, ClientIP: "192.0.2.1", Detail: "{}"}); err != nil {
				t.Fatal(err)
			}
		}
		log, err := s.AuditLog(ctx, 2)
		if err != nil || len(log) != 2 || log[0].Action != "token.created" || log[1].Action != "login.success" {
			t.Fatalf("audit log: %+v, %v", log, err)
		}
		// Filters, a prefix whose "_" and "%" are not wildcards, and the cursor.
		old := time.Now().Add(-100 * 24 * time.Hour)
		for _, e := range []store.AuditEvent{{Actor: "jo", Action: "login_x.success", ClientIP: "192.0.2.2"},
			{Actor: "jo", Action: "loginaxb", ClientIP: "192.0.2.2"}, {Actor: "jo", Action: "user.deleted", At: old}} {
			if err := s.Audit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		actions := func(q store.AuditQuery) ([]string, int64) {
			t.Helper()
			evs, next, err := s.QueryAudit(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			var out []string
			for _, e := range evs {
				out = append(out, e.Action)
			}
			return out, next
		}
		for _, c := range []struct {
			q    store.AuditQuery
			want string
		}{
			{store.AuditQuery{Actor: "ivy"}, "token.created login.success login.failure"},
			{store.AuditQuery{Action: "login.*"}, "login.success login.failure"},
			{store.AuditQuery{Action: "login_*"}, "login_x.success"},
			{store.AuditQuery{Action: "login.success"}, "login.success"},
			{store.AuditQuery{ClientIP: "192.0.2.2"}, "loginaxb login_x.success"},
			{store.AuditQuery{Actor: "jo", Until: time.Now().Add(-time.Hour)}, "user.deleted"},
			{store.AuditQuery{Actor: "jo", Since: time.Now().Add(-time.Hour)}, "loginaxb login_x.success"},
		} {
			if got, _ := actions(c.q); strings.Join(got, " ") != c.want {
				t.Errorf("%+v: %v, want %s", c.q, got, c.want)
			}
		}
		var pages []string
		cursor := int64(0)
		for range 10 {
			got, next := actions(store.AuditQuery{Limit: 2, Before: cursor})
			pages = append(pages, strings.Join(got, " "))
			if next == 0 {
				break
			}
			cursor = next
		}
		if len(pages) != 3 || pages[2] != "login.success login.failure" {
			t.Errorf("pages of two: %q", pages)
		}
		if n, err := s.PruneAudit(ctx, time.Now().Add(-90*24*time.Hour)); err != nil || n != 1 {
			t.Errorf("pruned %d, %v; want the one event older than 90 days", n, err)
		}
	})
}

// Errors name the backend and the host, never the password.
func TestConnectionErrorsNeverShowThePassword(t *testing.T) {
	for _, b := range []store.Backend{store.PostgreSQL, store.MySQL} {
		t.Run(string(b), func(t *testing.T) {
			o := testenv.Database(t, b)
			o.Password = "wrong-Password-7c1e"
			_, err := store.Open(ctx, o)
			if err == nil {
				t.Fatal("wrong password accepted")
			}
			msg := err.Error()
			if strings.Contains(msg, o.Password) || !strings.Contains(msg, string(b)) || !strings.Contains(msg, o.Host) {
				t.Fatalf("error must name %s and %s but not the password: %s", b, o.Host, msg)
			}
			o.Password = ""
			if _, err := store.Open(ctx, o); err == nil || !strings.Contains(err.Error(), "PASSWORD") {
				t.Fatalf("missing password: %v", err)
			}
			o.Password, o.Port = "x-secret-x", 1
			if _, err := store.Open(ctx, o); err == nil || strings.Contains(err.Error(), "x-secret-x") || !strings.Contains(err.Error(), "not reachable") {
				t.Fatalf("unreachable: %v", err)
			}
		})
	}
}

// A prompt id is owned by whoever claims it first, on any backend; owners are read in batches
// and forgotten once ComfyUI no longer holds the prompt.
func TestPromptOwners(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		t0 := time.Now().UTC()
		if err := s.ClaimPrompt(ctx, "p-1", "user-a", t0); err != nil {
			t.Fatal(err)
		}
		if err := s.ClaimPrompt(ctx, "p-1", "user-a", t0); err != nil {
			t.Fatalf("claiming one's own prompt again: %v", err)
		}
		if err := s.ClaimPrompt(ctx, "p-1", "user-b", t0); !errors.Is(err, store.ErrPromptTaken) {
			t.Fatalf("claiming another's prompt: %v", err)
		}
		ids := []string{"p-1"}
		for i := range 1200 { // more than one batch of the IN list
			id := fmt.Sprintf("bulk-%d", i)
			ids = append(ids, id)
			if i%2 == 0 {
				if err := s.ClaimPrompt(ctx, id, "user-b", t0.Add(time.Duration(i)*time.Millisecond)); err != nil {
					t.Fatal(err)
				}
			}
		}
		owners, err := s.PromptOwners(ctx, ids)
		if err != nil || len(owners) != 601 || owners["p-1"] != "user-a" || owners["bulk-2"] != "user-b" || owners["bulk-3"] != "" {
			t.Fatalf("%d owners, p-1 %q, bulk-2 %q, bulk-3 %q, %v", len(owners), owners["p-1"], owners["bulk-2"], owners["bulk-3"], err)
		}
		// Pruning keeps what ComfyUI still holds and what is younger than the cutoff.
		n, err := s.PrunePrompts(ctx, t0.Add(500*time.Millisecond), map[string]bool{"bulk-0": true})
		if err != nil {
			t.Fatal(err)
		}
		owners, _ = s.PromptOwners(ctx, ids)
		if n != 250 || owners["bulk-0"] == "" || owners["p-1"] != "" || owners["bulk-498"] != "" || owners["bulk-500"] == "" {
			t.Fatalf("pruned %d; left bulk-0 %q, p-1 %q, bulk-498 %q, bulk-500 %q", n, owners["bulk-0"], owners["p-1"], owners["bulk-498"], owners["bulk-500"])
		}
	})
}
