package legacyimport

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/netaddr"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// Target is what the mss-login database holds already, as far as the plan needs it.
type Target struct {
	Usernames map[string]bool // lower-cased
	Roles     map[string]bool
	HasOwner  bool
}

// UserPlan is what happens to one original user.
type UserPlan struct {
	Source User
	Import bool
	Role   string
	Owner  bool
	// Note says why a user is skipped, or what changed on the way (a missing role, a second
	// owner); "" when imported as it was.
	Note string
}

// Plan is the whole import, decided before anything is written.
type Plan struct {
	Users   []UserPlan
	Tokens  []Token // of imported users, not expired
	Bans    []Ban   // active ones, parsed
	Allow   []netip.Prefix
	Devices []string
	Skipped []string // other rows left out, each with the reason
}

// Decide turns a dump into a plan: pure, so the rules are table-tested.
//   - A username already in the target is skipped (nothing stored is overwritten), as are
//     reserved and invalid names and users without a password hash.
//   - The role is the original's: "owner" in groups makes the owner (unless the target has
//     one: then admin, said in the note); the admin flag makes admin; else the first group,
//     lower-cased, when the target has that role, else "user" (said in the note).
//   - Tokens of imported users only, not expired at now; bans active at now; allow entries
//     that parse as an IP or CIDR.
func Decide(d *Dump, t Target, now time.Time) Plan {
	p := Plan{Skipped: slices.Clone(d.Skipped)}
	imported := map[string]string{} // original user id → username
	ids := map[string]int{}
	for _, u := range d.Users {
		ids[u.ID]++
	}
	ownerTaken := t.HasOwner
	for _, u := range d.Users {
		up := UserPlan{Source: u}
		key := strings.ToLower(u.Username)
		switch err := store.ValidateUsername(u.Username); {
		case err != nil:
			up.Note = err.Error() // a reserved name (mss-login has its own guest), or not valid here
		case t.Usernames[key]:
			up.Note = "already in the mss-login database (left as it is)"
		case u.PasswordHash == "":
			up.Note = "no password hash"
		case u.ID == "" || ids[u.ID] > 1:
			up.Note = "no user_id of its own (its API tokens could not be told apart)"
		case u.mfaWithoutSecret():
			up.Note = "MFA is on but no secret is stored: left out rather than imported without MFA"
		default:
			up.Import = true
			up.Role, up.Owner, up.Note = roleOf(u, t.Roles, &ownerTaken)
			imported[u.ID] = u.Username
		}
		p.Users = append(p.Users, up)
	}
	for _, tok := range d.Tokens {
		name, ok := imported[tok.UserID]
		switch {
		case !ok:
			p.Skipped = append(p.Skipped, fmt.Sprintf("API token %q: its user is not imported", tok.Label))
		case tok.Username != "" && !strings.EqualFold(tok.Username, name):
			p.Skipped = append(p.Skipped, fmt.Sprintf("API token %q: recorded for %q, but its user_id is %s's", tok.Label, tok.Username, name))
		case !tok.ExpiresAt.IsZero() && !tok.ExpiresAt.After(now):
			p.Skipped = append(p.Skipped, fmt.Sprintf("API token %q: expired", tok.Label))
		case len(tok.Hash) != 64:
			p.Skipped = append(p.Skipped, fmt.Sprintf("API token %q: not a SHA-256 hash", tok.Label))
		default:
			p.Tokens = append(p.Tokens, tok)
		}
	}
	for _, b := range d.Bans {
		if _, err := netip.ParseAddr(b.IP); err != nil {
			p.Skipped = append(p.Skipped, fmt.Sprintf("ban of %q: not an IP address", b.IP))
			continue
		}
		if !b.ExpiresAt.IsZero() && !b.ExpiresAt.After(now) {
			continue // expired: nothing to carry
		}
		p.Bans = append(p.Bans, b)
	}
	for _, a := range d.Allow {
		pfx, err := netaddr.ParsePrefix(a)
		if err != nil {
			p.Skipped = append(p.Skipped, fmt.Sprintf("allow-list entry %q: not an IP or CIDR", a))
			continue
		}
		p.Allow = append(p.Allow, pfx)
	}
	p.Devices = slices.Clone(d.Devices)
	return p
}

func roleOf(u User, have map[string]bool, ownerTaken *bool) (role string, owner bool, note string) {
	groups := make([]string, 0, len(u.Groups))
	for _, g := range u.Groups {
		groups = append(groups, strings.ToLower(strings.TrimSpace(g)))
	}
	if slices.Contains(groups, "owner") {
		if !*ownerTaken {
			*ownerTaken = true
			return roles.Admin, true, ""
		}
		return roles.Admin, false, "was the owner; mss-login has one already, so admin"
	}
	if u.Admin || slices.Contains(groups, roles.Admin) {
		return roles.Admin, false, ""
	}
	if len(groups) == 0 {
		return roles.User, false, ""
	}
	if have[groups[0]] {
		return groups[0], false, ""
	}
	return roles.User, false, fmt.Sprintf("role %q does not exist here, so user (create a ComfyRole %s and change the role)", groups[0], groups[0])
}
