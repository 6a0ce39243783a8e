package legacyimport

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/store"
)

// reason marks every row the import writes, in the audit trail and on rules and bans.
const reason = "imported from MSS-Login"

// TargetOf reads what the plan needs from an mss-login database.
func TargetOf(ctx context.Context, s *store.Store) (Target, error) {
	t := Target{Usernames: map[string]bool{}, Roles: map[string]bool{}}
	users, err := s.Users(ctx)
	if err != nil {
		return t, err
	}
	for _, u := range users {
		t.Usernames[strings.ToLower(u.Username)] = true
		t.HasOwner = t.HasOwner || u.Owner
	}
	rs, err := s.Roles(ctx)
	if err != nil {
		return t, err
	}
	for _, r := range rs {
		t.Roles[r.Name] = true
	}
	return t, nil
}

// Report counts what Apply wrote.
type Report struct {
	Users, MFA, BackupCodes, Tokens, Bans, Allow, Devices int
	// Problems are rows that could not be written (a user created meanwhile, a duplicate
	// token); the rest was written.
	Problems []string
}

// Apply writes a plan. Rows already there are left alone, so running the import again is
// safe: what was imported is skipped. DeviceLock is how long imported device locks last (the
// original's never ended).
func Apply(ctx context.Context, s *store.Store, p Plan, now time.Time, deviceLock time.Duration) (Report, error) {
	var r Report
	ids := map[string]string{} // original user id → new id
	for _, up := range p.Users {
		if !up.Import {
			continue
		}
		// A user with MFA is created disabled and enabled only once the secret is stored: no
		// moment, and no failure, leaves them reachable with the password alone.
		withMFA := up.Source.MFAEnabled && up.Source.TOTPSecret != ""
		u := store.User{Username: up.Source.Username, PasswordHash: up.Source.PasswordHash, Role: up.Role, Owner: up.Owner, Disabled: withMFA}
		switch err := s.CreateUser(ctx, &u); {
		case errors.Is(err, store.ErrConflict), errors.Is(err, store.ErrOwnerTaken):
			r.Problems = append(r.Problems, fmt.Sprintf("user %s: %v", u.Username, err))
			continue
		case err != nil:
			return r, fmt.Errorf("user %s: %w", u.Username, err)
		}
		if withMFA {
			if err := importMFA(ctx, s, u, up.Source); err != nil {
				_ = s.DeleteUser(ctx, u.ID) // not half imported: the next run tries again
				return r, fmt.Errorf("user %s: %w", u.Username, err)
			}
			r.MFA++
			if up.Source.BackupCodeHash != "" {
				r.BackupCodes++
			}
		}
		r.Users++
		ids[up.Source.ID] = u.ID
		_ = s.Audit(ctx, store.AuditEvent{Actor: "admin-cli", Action: "user.imported", Target: u.Username, Detail: reason + ", role " + u.Role})
	}
	for _, t := range p.Tokens {
		id, ok := ids[t.UserID]
		if !ok {
			continue // its user was created meanwhile by someone else
		}
		tok := store.APIToken{TokenHash: t.Hash, UserID: id, Label: t.Label, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt}
		if err := s.CreateAPIToken(ctx, &tok); err != nil {
			if errors.Is(err, store.ErrConflict) {
				r.Problems = append(r.Problems, fmt.Sprintf("API token %q: already present", t.Label))
				continue
			}
			return r, fmt.Errorf("API token %q: %w", t.Label, err)
		}
		r.Tokens++
	}
	for _, b := range p.Bans {
		created, err := s.BanIP(ctx, netip.MustParseAddr(b.IP), now, b.ExpiresAt, reason)
		if err != nil {
			return r, fmt.Errorf("ban of %s: %w", b.IP, err)
		}
		if created {
			r.Bans++
		}
	}
	if len(p.Allow) > 0 {
		rules, err := s.IPRules(ctx)
		if err != nil {
			return r, err
		}
		have := map[netip.Prefix]bool{}
		for _, x := range rules {
			if x.Action == store.Allow {
				have[x.CIDR] = true
			}
		}
		for _, pfx := range p.Allow {
			if have[pfx] {
				continue
			}
			if _, err := s.AddIPRule(ctx, store.IPRule{CIDR: pfx, Action: store.Allow, Source: store.SourceManual, Reason: reason}); err != nil {
				return r, fmt.Errorf("allow %s: %w", pfx, err)
			}
			have[pfx] = true
			r.Allow++
		}
	}
	for _, d := range p.Devices {
		created, err := s.LockDevice(ctx, d, now, now.Add(deviceLock), reason)
		if err != nil {
			return r, fmt.Errorf("device lock: %w", err)
		}
		if created {
			r.Devices++
		}
	}
	return r, nil
}

// importMFA stores the secret and the backup code, then enables the user created disabled.
func importMFA(ctx context.Context, s *store.Store, u store.User, src User) error {
	if err := s.SetMFA(ctx, u.ID, src.TOTPSecret, true); err != nil {
		return fmt.Errorf("MFA: %w", err)
	}
	if src.BackupCodeHash != "" {
		if err := s.SetBackupCodes(ctx, u.ID, []string{src.BackupCodeHash}); err != nil {
			return fmt.Errorf("backup code: %w", err)
		}
	}
	u.Disabled = false
	return s.UpdateUser(ctx, u)
}
