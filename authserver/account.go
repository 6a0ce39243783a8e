package authserver

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// The account page: change the password, see and end sessions, create and revoke API tokens —
// plain forms, no script. Forms are same-origin checked (ServeHTTP) and the cookie is
// SameSite=Strict.

func (s *Server) renderAccount(w http.ResponseWriter, r *http.Request, code int, extra map[string]any) {
	id := reqInfo(r).id
	ctx := r.Context()
	sessions, _ := s.db.Sessions(ctx, id.user.ID)
	tokens, _ := s.db.APITokens(ctx, id.user.ID)
	now := s.now()
	var live []store.Session
	for _, x := range sessions {
		if x.RevokedAt.IsZero() && (x.ExpiresAt.IsZero() || x.ExpiresAt.After(now)) {
			live = append(live, x)
		}
	}
	var active []store.APIToken
	for _, t := range tokens {
		if t.RevokedAt.IsZero() && (t.ExpiresAt.IsZero() || t.ExpiresAt.After(now)) {
			active = append(active, t)
		}
	}
	data := map[string]any{"User": id.user, "Role": id.role.Name, "Sessions": live, "Current": id.jti, "Tokens": active,
		"CanTokens": id.can(roles.CanHaveAPITokens), "Managed": id.user.OwnerRef != "", "ManagedBy": managedBy(id.user.OwnerRef),
		"MFAOffered": s.cfg.MFAEnabled(), "MFARequired": s.mfaStep(id.user, id.role) == purposeEnrol}
	for k, v := range extra {
		data[k] = v
	}
	renderPage(w, code, "account.html", data)
}

func (s *Server) handleAccount(w http.ResponseWriter, r *http.Request) {
	s.renderAccount(w, r, http.StatusOK, nil)
}

func (s *Server) handleAccountPassword(w http.ResponseWriter, r *http.Request) {
	f, _, err := form(r)
	if err != nil {
		s.renderAccount(w, r, http.StatusBadRequest, map[string]any{"Error": "Unreadable request."})
		return
	}
	if f["new_password"] != f["confirm_password"] {
		s.renderAccount(w, r, http.StatusBadRequest, map[string]any{"Error": "The new passwords differ."})
		return
	}
	if code, problem := s.changePassword(r, reqInfo(r).id, f["current_password"], f["new_password"]); problem != "" {
		s.renderAccount(w, r, code, map[string]any{"Error": problem})
		return
	}
	s.renderAccount(w, r, http.StatusOK, map[string]any{"Notice": "Password changed. Your other sessions were ended."})
}

// endOtherSessions revokes every session of id's user except the current one.
func (s *Server) endOtherSessions(r *http.Request, id *identity) {
	ctx := r.Context()
	sessions, _ := s.db.Sessions(ctx, id.user.ID)
	for _, x := range sessions {
		if x.JTI != id.jti && x.RevokedAt.IsZero() {
			_ = s.db.RevokeSession(ctx, x.JTI, "")
		}
	}
	_ = s.cache.refresh(ctx, false) // closes the ended sessions' sockets
}

func (s *Server) handleAccountToken(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	id := rq.id
	f, _, err := form(r)
	if err != nil {
		s.renderAccount(w, r, http.StatusBadRequest, map[string]any{"Error": "Unreadable request."})
		return
	}
	if !id.can(roles.CanHaveAPITokens) {
		s.renderAccount(w, r, http.StatusForbidden, map[string]any{"Error": "Your role may not have API tokens."})
		return
	}
	// The password is asked for on the page: a session alone never mints a token here.
	if ok, ref, err := s.confirmPassword(r, id.user, f["password"]); !ok {
		msg := "The password is incorrect."
		if err != nil || ref != nil {
			msg = "Too many failed attempts. Try again later."
		}
		s.renderAccount(w, r, http.StatusUnauthorized, map[string]any{"Error": msg})
		return
	}
	hours, err := strconv.Atoi(f["expire_hours"])
	if err != nil || hours <= 0 {
		hours = 720
	}
	if hours > s.cfg.MaxAccessTokenExpirationHours {
		hours = s.cfg.MaxAccessTokenExpirationHours
	}
	token, _, err := s.mintToken(r.Context(), rq, id, f["label"], s.now().Add(time.Duration(hours)*time.Hour))
	if err != nil {
		s.renderAccount(w, r, http.StatusInternalServerError, map[string]any{"Error": "Could not create the token."})
		return
	}
	s.renderAccount(w, r, http.StatusOK, map[string]any{"NewToken": token})
}

func (s *Server) handleAccountRevoke(w http.ResponseWriter, r *http.Request) {
	err := s.revokeCredential(r, r.PathValue("kind"), r.PathValue("id"), reqInfo(r).id.user.ID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		s.renderAccount(w, r, http.StatusNotFound, map[string]any{"Error": "Not found."})
		return
	case err != nil: // never a redirect that looks like success
		s.log.Error("revoking from the account page failed", "error", err)
		s.renderAccount(w, r, http.StatusServiceUnavailable, map[string]any{"Error": "Could not revoke it: the users database is unavailable. Try again."})
		return
	}
	http.Redirect(w, r, "/mss-login/account", http.StatusSeeOther)
}

// revokeCredential revokes a session or an API token (kind "sessions" or "tokens") of owner
// ("" for any user: the console), audits it and closes its sockets.
func (s *Server) revokeCredential(r *http.Request, kind, id, owner string) error {
	ctx, rq := r.Context(), reqInfo(r)
	var err error
	switch kind {
	case "tokens":
		err = s.db.RevokeAPIToken(ctx, id, owner)
	case "sessions":
		if err = s.db.RevokeSession(ctx, id, owner); err == nil {
			s.cache.markRevoked(id)
		}
	default:
		err = store.ErrNotFound
	}
	if err != nil {
		return err
	}
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: rq.id.user.Username, Action: strings.TrimSuffix(kind, "s") + ".revoked",
		Target: id, ClientIP: rq.ip.String()})
	_ = s.cache.refresh(ctx, false) // closes the revoked credential's sockets
	return nil
}

// handleAccountMFA disables MFA or makes new backup codes ("action"), after the password and a
// current code: neither a stolen session alone nor a stolen phone alone is enough.
func (s *Server) handleAccountMFA(w http.ResponseWriter, r *http.Request) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	f, _, err := form(r)
	if err != nil {
		s.renderAccount(w, r, http.StatusBadRequest, map[string]any{"Error": "Unreadable request."})
		return
	}
	u := rq.id.user
	if !u.MFAEnabled {
		s.renderAccount(w, r, http.StatusConflict, map[string]any{"Error": "Two-factor sign-in is not on."})
		return
	}
	ok, ref, err := s.confirmPassword(r, u, f["password"])
	switch {
	case err != nil:
		dbUnavailable(w, r)
		return
	case ref != nil:
		s.renderAccount(w, r, http.StatusForbidden, map[string]any{"Error": "Too many failed attempts from this address: wait and try again."})
		return
	case !ok:
		s.renderAccount(w, r, http.StatusUnauthorized, map[string]any{"Error": "The password is not right."})
		return
	}
	secret, err := s.db.TOTPSecret(ctx, u.ID)
	if err != nil || secret == "" || !s.checkCode(ctx, u.ID, secret, f["code"], now) {
		s.renderAccount(w, r, http.StatusUnauthorized, map[string]any{"Error": "That code is not right: type the one your app shows now."})
		return
	}
	switch f["action"] {
	case "disable":
		if err := s.db.SetMFA(ctx, u.ID, "", false); err != nil {
			dbUnavailable(w, r)
			return
		}
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: u.Username, Action: "mfa.disabled", ClientIP: rq.ip.String()})
		_ = s.cache.refresh(ctx, false)
		rq.id.user.MFAEnabled = false
		notice := "Two-factor sign-in is off."
		if s.mfaStep(rq.id.user, rq.id.role) == purposeEnrol {
			notice += " Your role requires it: you enrol again at your next sign-in."
		}
		s.renderAccount(w, r, http.StatusOK, map[string]any{"Notice": notice})
	case "backup-codes":
		codes, hashes := newBackupCodes()
		if err := s.db.SetBackupCodes(ctx, u.ID, hashes); err != nil {
			dbUnavailable(w, r)
			return
		}
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: u.Username, Action: "mfa.backup_codes", ClientIP: rq.ip.String()})
		s.renderAccount(w, r, http.StatusOK, map[string]any{"Notice": "New backup codes (the old ones no longer work); shown only now:",
			"BackupCodes": codes})
	default:
		s.renderAccount(w, r, http.StatusBadRequest, map[string]any{"Error": "action: disable or backup-codes"})
	}
}
