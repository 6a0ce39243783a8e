package authserver

// API tokens: listing, creation (from a session, or the original's username-and-password flow
// for scripts) and revocation.

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

type tokenView struct {
	ID         string `json:"id"`
	Label      string `json:"label"`
	Username   string `json:"username,omitempty"`
	CreatedAt  string `json:"created_at"`
	ExpiresAt  string `json:"expires_at,omitempty"`
	LastUsedAt string `json:"last_used_at,omitempty"`
	Revoked    bool   `json:"revoked"`
}

func isoOrEmpty(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// handleListTokens lists the caller's tokens; an admin may ask for everyone's (?all=true).
func (s *Server) handleListTokens(w http.ResponseWriter, r *http.Request) {
	id := reqInfo(r).id
	userID := id.user.ID
	if r.URL.Query().Get("all") == "true" && id.isAdmin() {
		userID = ""
	}
	toks, err := s.db.APITokens(r.Context(), userID)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	snap := s.cache.get()
	out := []tokenView{}
	for _, t := range toks {
		out = append(out, tokenView{ID: t.ID, Label: t.Label, Username: snap.usersByID[t.UserID].Username,
			CreatedAt: isoOrEmpty(t.CreatedAt), ExpiresAt: isoOrEmpty(t.ExpiresAt), LastUsedAt: isoOrEmpty(t.LastUsedAt),
			Revoked: !t.RevokedAt.IsZero()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

// handleCreateToken creates an API token. It needs can_have_api_tokens, and either the
// password (counted like a login; with MFA enrolled, a code too) or a session younger than 10
// minutes: a stolen old cookie cannot mint long-lived tokens.
func (s *Server) handleCreateToken(w http.ResponseWriter, r *http.Request) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	f, _, ok := readForm(w, r)
	if !ok {
		return
	}
	id := rq.id
	if id == nil {
		// The original's scripted flow (Krita, Comfy Portal): username and password, no session.
		var problem string
		if id, problem = s.tokenCaller(r, f); id == nil {
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": problem, "mfa_required": problem == mfaCodeNeeded})
			return
		}
	} else if pw := f["password"]; pw != "" || id.tokenID != "" || now.Sub(id.issuedAt) > 10*time.Minute {
		ok, ref, err := s.confirmPassword(r, id.user, pw)
		switch {
		case err != nil:
			dbUnavailable(w, r)
			return
		case ref != nil:
			writeJSON(w, http.StatusForbidden, ref.body())
			return
		case !ok:
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Password required: confirm your password to create a token.",
				"code": "REAUTH_REQUIRED"})
			return
		}
	}
	if !id.can(roles.CanHaveAPITokens) {
		writeError(w, r, http.StatusForbidden, "TOKENS_DENIED", "Your role may not have API tokens.")
		return
	}
	hours := 720
	if v := f["expire_hours"]; v != "" {
		var err error
		if hours, err = strconv.Atoi(v); err != nil {
			writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "expire_hours: a whole number of hours")
			return
		}
	}
	var expires time.Time
	switch {
	case hours <= 0:
		if !id.can(roles.CanHaveNonExpiringJWT) {
			writeError(w, r, http.StatusForbidden, "NON_EXPIRING_DENIED", "expire_hours: your role may not have tokens that never expire")
			return
		}
	default:
		if max := s.cfg.MaxAccessTokenExpirationHours; hours > max {
			hours = max
		}
		expires = now.Add(time.Duration(hours) * time.Hour)
	}
	token, tokenID, err := s.mintToken(ctx, rq, id, f["label"], expires)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "TOKEN_FAILED", "Could not create the token.")
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": "Token created. It is shown once: store it now.",
		"id": tokenID, "token": token, "jwt_token": token, "expires_at": isoOrEmpty(expires), "expires_in_hours": hours})
}

// mintToken creates an API token for id's user; it returns the token (shown once) and its id.
func (s *Server) mintToken(ctx context.Context, rq *request, id *identity, label string, expires time.Time) (string, string, error) {
	token, hash := newAPIToken()
	t := store.APIToken{TokenHash: hash, UserID: id.user.ID, Label: truncateString(label, 128), ExpiresAt: expires, CreatedAt: s.now()}
	if err := s.db.CreateAPIToken(ctx, &t); err != nil {
		s.log.Error("creating an API token failed", "error", err)
		return "", "", err
	}
	// Usable at once on this replica; the others see it at their next refresh.
	_ = s.cache.refresh(ctx, false)
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: id.user.Username, Action: "token.created", Target: t.ID, ClientIP: rq.ip.String(),
		Detail: "label " + t.Label})
	return token, t.ID, nil
}

func (s *Server) handleRevokeToken(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	owner := rq.id.user.ID
	if rq.id.isAdmin() {
		owner = "" // admins revoke anyone's token
	}
	if storeFailed(w, r, s.db.RevokeAPIToken(r.Context(), r.PathValue("id"), owner), "No such token.") {
		return
	}
	_ = s.cache.refresh(r.Context(), false) // closes its sockets
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "token.revoked", Target: r.PathValue("id"),
		ClientIP: rq.ip.String()})
	writeJSON(w, http.StatusOK, map[string]any{"message": "Token revoked"})
}

const mfaCodeNeeded = "MFA code required: repeat the request with code (or backup_code)."

// tokenCaller authenticates a token request that carries username and password (and, with MFA
// enrolled, a code). It returns nil and a message on failure; every failure is a counted attempt.
func (s *Server) tokenCaller(r *http.Request, f map[string]string) (*identity, string) {
	const invalid = "Invalid credentials"
	if f["password"] == "" {
		return nil, invalid // before any lookup: nothing to tell apart by its time
	}
	start := time.Now()
	u, _ := s.userByName(r.Context(), f["username"])
	ok, ref, err := s.confirmPassword(r, u, f["password"])
	if ok && u.Disabled {
		s.timing.pad(start) // as late as a wrong password
	}
	switch {
	case err != nil:
		return nil, "The users database is not reachable."
	case ref != nil:
		return nil, ref.message()
	case !ok || u.Disabled:
		return nil, invalid
	case !s.passwordSignIn(u):
		return nil, invalid // as a wrong password: nothing to confirm a password with
	}
	if s.cfg.MFAEnabled() && u.MFAEnabled {
		code, backup := f["code"], f["backup_code"]
		if code == "" && backup == "" {
			return nil, mfaCodeNeeded
		}
		if !s.secondFactor(r.Context(), u.ID, code, backup, s.now()) {
			return nil, invalid
		}
	}
	return &identity{user: u, role: s.cache.get().role(u.Role)}, ""
}
