package authserver

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/authserver/policy"
)

// check is one request to decide, as each caller read it from its own input: the proxy from the
// request, forward auth from the gateway's description of the original request, the socket
// sweep from the upgrade it let through.
type check struct {
	ip       netip.Addr
	device   string
	method   string
	decision policy.Decision // the policy's answer for method and the normalised path
	// id is the identity the credential named, not yet re-checked (hasID false: no credential,
	// or one that names nothing).
	id        identity
	hasID     bool
	viaCookie bool // the credential came from the cookie, which browsers send cross-site too
	// sameOrigin: the request came from a page of this site, or from no browser page at all.
	sameOrigin bool
	upgrade    bool // a WebSocket upgrade
	// settingsBody is the JSON body of a request whose rule depends on it (policy.SettingsRule);
	// nil where it cannot be read (forward auth), which decides as if it wrote every setting.
	settingsBody []byte
	now          time.Time
}

// verdict is the decision: status 0 lets the request through, as id when authed (else
// anonymous).
type verdict struct {
	status  int
	code    string
	message string
	reason  string // the mss_login_auth_results_total label of a refusal
	rule    policy.Rule
	id      identity
	authed  bool
}

// decide is the one access decision, the same for every caller: IP rules, bans and device
// locks; the identity (still enabled, session not revoked, expired or idle, token not revoked
// or expired); the route's rule; the cross-site check. It is a pure function of its input, the
// snapshot and security.json's state; each caller writes its own answer.
func decide(snap *snapshot, sec ipaccess.Security, idle time.Duration, c check) verdict {
	if v := ipaccess.Decide(ipaccess.Input{IP: c.ip, DeviceID: c.device, Now: c.now, Rules: snap.rules,
		Devices: snap.devices, Security: sec}); v != ipaccess.Allowed && !c.decision.Rule.Asset {
		return verdict{status: http.StatusForbidden, code: "IP_DENIED", reason: "ip_" + strings.ReplaceAll(v.String(), " ", "_"),
			message: "Access denied: IP is either not whitelisted or is blacklisted." + lockEnds(snap, v, c)}
	}
	rule := c.decision.Rule
	if rule.SettingsBody {
		rule = policy.SettingsRule(c.settingsBody)
	}
	id, authed := snap.current(c.id, c.hasID, c.now, idle)
	if rule.Access != policy.Public {
		if !authed {
			return verdict{status: http.StatusUnauthorized, code: "UNAUTHENTICATED", message: "Authentication required.",
				reason: "unauthenticated", rule: rule}
		}
		if !id.allowed(rule) {
			return verdict{status: http.StatusForbidden, code: rule.Code, message: rule.Message, reason: "forbidden", rule: rule}
		}
	}
	// A cookie rides along on cross-site requests, and a page elsewhere can post to the auth
	// server's own forms (login, recovery) with no credential at all: state changes and
	// WebSocket upgrades need this origin. Gateway requests are decided on the original.
	if !c.sameOrigin && !rule.Gateway && (c.upgrade ||
		!safeMethod(c.method) && (authed && c.viaCookie || c.decision.Local)) {
		return verdict{status: http.StatusForbidden, code: "CROSS_SITE", message: "Cross-site request refused.",
			reason: "cross_site", rule: rule}
	}
	return verdict{rule: rule, id: id, authed: authed}
}

// current re-checks an identity against the snapshot at now and returns it with the user and
// role as they are now; ok is false when it is no longer valid (or there was none).
func (sn *snapshot) current(id identity, has bool, now time.Time, idle time.Duration) (_ identity, ok bool) {
	if !has {
		return identity{}, false
	}
	u, ok := sn.usersByID[id.user.ID]
	if !ok || u.Disabled {
		return identity{}, false
	}
	if id.tokenID != "" {
		t, ok := sn.tokenByID[id.tokenID]
		if !ok || t.UserID != u.ID || expired(t.ExpiresAt, now) {
			return identity{}, false
		}
	} else {
		ss := id.sess
		if ss == nil || ss.revoked.Load() || ss.userID != u.ID || expired(ss.expiresAt, now) || ss.idle(now, idle) {
			return identity{}, false
		}
	}
	id.user, id.role = u, sn.role(u.Role) // an unknown role grants nothing; the owner still has every flag
	return id, true
}

// expired: a zero expiry never expires.
func expired(at, now time.Time) bool { return !at.IsZero() && !at.After(now) }

// idle: unused for longer than the idle limit (0: no limit).
func (ss *session) idle(now time.Time, limit time.Duration) bool {
	return limit > 0 && now.Sub(time.UnixMilli(ss.lastUsed.Load())) > limit
}

// allowed reports whether the identity satisfies rule.
func (id *identity) allowed(rule policy.Rule) bool {
	switch rule.Access {
	case policy.Public, policy.Authenticated:
		return true
	case policy.Permission:
		return id.can(rule.Permission)
	case policy.Admin:
		return id.isAdmin()
	}
	return false
}

// decide runs the decision on the server's current snapshot and security.json.
func (s *Server) decide(c check) verdict {
	return decide(s.cache.get(), s.security.get(), s.idleTimeout, c)
}

// lockEnds tells a banned address or a locked device when it may try again.
func lockEnds(snap *snapshot, v ipaccess.Verdict, c check) string {
	var until time.Time
	switch v {
	case ipaccess.DeniedBanned:
		snap.rules.Match(c.ip.Unmap(), c.now, func(r ipaccess.Rule) bool {
			if r.Ban {
				until = r.ExpiresAt
				return false
			}
			return true
		})
	case ipaccess.DeniedDevice:
		until = snap.devices[c.device]
	default:
		return ""
	}
	if until.IsZero() {
		return " The lock has no end: an admin lifts it."
	}
	return fmt.Sprintf(" The lock ends at %s UTC (in %s).", until.UTC().Format("2006-01-02 15:04"),
		until.Sub(c.now).Round(time.Minute).String())
}
