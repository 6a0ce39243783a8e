package authserver

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/mss-login/mss-login/internal/netaddr"
	"github.com/mss-login/mss-login/internal/store"
)

// The admin console's addresses page (IP rules, bans, device locks) and access page (every
// user's sessions and API tokens).

func (s *Server) renderIP(w http.ResponseWriter, r *http.Request, code int, notice, problem string) {
	ctx := r.Context()
	rules, err := s.db.IPRules(ctx)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	now := s.now()
	live := rules[:0]
	for _, x := range rules {
		if x.Active(now) {
			live = append(live, x)
		}
	}
	devices, err := s.db.LockedDevices(ctx, now)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	renderPage(w, code, "admin-ip.html", map[string]any{"Tab": "ip", "Rules": live, "Devices": devices, "Notice": notice, "Error": problem})
}

func (s *Server) handleConsoleIP(w http.ResponseWriter, r *http.Request) {
	s.renderIP(w, r, http.StatusOK, "", "")
}

// handleConsoleIPAction adds or removes a rule made here, lifts a ban (as kubectl delete
// lockout does: the failures are forgotten too) or unlocks a device.
func (s *Server) handleConsoleIPAction(w http.ResponseWriter, r *http.Request) {
	rq, ctx := reqInfo(r), r.Context()
	f, _, err := form(r)
	if err != nil {
		s.renderIP(w, r, http.StatusBadRequest, "", "Unreadable request.")
		return
	}
	audit := func(action, target string) {
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: rq.id.user.Username, Action: action, Target: target, ClientIP: rq.ip.String(),
			Detail: "admin console"})
	}
	var done string
	switch f["action"] {
	case "add":
		p, err := netaddr.ParsePrefix(f["cidr"])
		if err != nil {
			s.renderIP(w, r, http.StatusBadRequest, "", fmt.Sprintf("cidr: %q: %v", f["cidr"], err))
			return
		}
		rule := store.IPRule{CIDR: p, Action: f["rule"], Source: store.SourceManual, Reason: f["reason"]}
		if rule.Action != store.Allow && rule.Action != store.Deny {
			s.renderIP(w, r, http.StatusBadRequest, "", "rule: allow or deny")
			return
		}
		if h := f["hours"]; h != "" {
			n, err := strconv.Atoi(h)
			if err != nil || n < 1 {
				s.renderIP(w, r, http.StatusBadRequest, "", "hours: a whole number of hours, at least 1")
				return
			}
			rule.ExpiresAt = s.now().Add(time.Duration(n) * time.Hour)
		}
		if _, err := s.db.AddIPRule(ctx, rule); err != nil {
			s.renderIP(w, r, http.StatusServiceUnavailable, "", "Could not store the rule.")
			return
		}
		audit("ip_rule.added", rule.Action+" "+p.String())
		done = "Added: " + rule.Action + " " + p.String() + "."
	case "remove", "lift":
		id, _ := strconv.ParseInt(f["id"], 10, 64)
		var target *store.IPRule
		rules, err := s.db.IPRules(ctx)
		if err != nil {
			dbUnavailable(w, r)
			return
		}
		for i := range rules {
			if rules[i].ID == id {
				target = &rules[i]
			}
		}
		switch {
		case target == nil:
			s.renderIP(w, r, http.StatusNotFound, "", "No such rule (removed meanwhile?).")
			return
		case target.OwnerRef != "":
			s.renderIP(w, r, http.StatusConflict, "", "That rule belongs to "+managedBy(target.OwnerRef)+": change it in Git (kubectl).")
			return
		case target.Source == store.SourceAutomatic:
			err = s.db.Unban(ctx, target.CIDR.Addr())
			audit("ban.lifted", target.CIDR.Addr().String())
			done = "Ban of " + target.CIDR.Addr().String() + " lifted."
		default:
			err = s.db.DeleteIPRule(ctx, id)
			audit("ip_rule.removed", target.Action+" "+target.CIDR.String())
			done = "Removed: " + target.Action + " " + target.CIDR.String() + "."
		}
		if err != nil {
			s.renderIP(w, r, http.StatusServiceUnavailable, "", "Could not change the rules.")
			return
		}
	case "unlock":
		if err := s.db.UnlockDevice(ctx, f["device"]); err != nil {
			s.renderIP(w, r, http.StatusNotFound, "", "No such locked device.")
			return
		}
		audit("device.unlocked", f["device"])
		done = "Device unlocked."
	default:
		s.renderIP(w, r, http.StatusBadRequest, "", "action: add, remove, lift or unlock")
		return
	}
	_ = s.cache.refresh(ctx, false)
	s.renderIP(w, r, http.StatusOK, done, "")
}

// maxListed bounds the sessions and tokens the console lists (newest first).
const maxListed = 500

func (s *Server) renderAccess(w http.ResponseWriter, r *http.Request, code int, notice, problem string) {
	ctx, now := r.Context(), s.now()
	sessions, err := s.db.Sessions(ctx, "")
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	tokens, err := s.db.APITokens(ctx, "")
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	// ?user= narrows the lists to one user's (the users page links there).
	only := ""
	names := map[string]string{}
	for id, u := range s.cache.get().usersByID {
		names[id] = u.Username
		if u.Username == r.URL.Query().Get("user") {
			only = id
		}
	}
	if r.URL.Query().Get("user") != "" && only == "" {
		only = "-" // no such user: nothing listed
	}
	var live []store.Session
	for _, x := range sessions {
		if x.RevokedAt.IsZero() && (x.ExpiresAt.IsZero() || x.ExpiresAt.After(now)) && len(live) < maxListed && (only == "" || x.UserID == only) {
			live = append(live, x)
		}
	}
	var active []store.APIToken
	for _, t := range tokens {
		if t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(now)) && len(active) < maxListed && (only == "" || t.UserID == only) {
			active = append(active, t)
		}
	}
	renderPage(w, code, "admin-access.html", map[string]any{"Tab": "access", "Sessions": live, "Tokens": active, "Names": names,
		"Current": reqInfo(r).id.jti, "User": r.URL.Query().Get("user"), "Notice": notice, "Error": problem})
}

func (s *Server) handleConsoleAccess(w http.ResponseWriter, r *http.Request) {
	s.renderAccess(w, r, http.StatusOK, "", "")
}

// handleConsoleRevoke ends any user's session or revokes any API token.
func (s *Server) handleConsoleRevoke(w http.ResponseWriter, r *http.Request) {
	f, _, err := form(r)
	if err != nil {
		s.renderAccess(w, r, http.StatusBadRequest, "", "Unreadable request.")
		return
	}
	switch err := s.revokeCredential(r, f["kind"], f["id"], ""); {
	case errors.Is(err, store.ErrNotFound):
		s.renderAccess(w, r, http.StatusNotFound, "", "Not found (revoked meanwhile?).")
	case err != nil:
		s.renderAccess(w, r, http.StatusServiceUnavailable, "", "Could not revoke it: the users database is unavailable.")
	default:
		s.renderAccess(w, r, http.StatusOK, "Revoked.", "")
	}
}
