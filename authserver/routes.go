package authserver

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// routes are the auth server's own endpoints. Each is reached only through ServeHTTP, after the
// authenticator and the policy (authserver/policy lists every one of them).
func (s *Server) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /login", s.handleLoginPage)
	m.HandleFunc("POST /login", s.handleLogin)
	m.HandleFunc("GET /logout", s.handleLogout)
	m.HandleFunc("POST /logout", s.handleLogout)
	m.HandleFunc("GET /register", s.handleRegister)
	m.HandleFunc("POST /register", s.handleRegister)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) })
	m.HandleFunc("GET /readyz", s.handleReady)
	m.Handle("GET /mss-login/static/", staticHandler())
	m.HandleFunc("GET /mss-login/api/is-https", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]bool{"is_https": reqInfo(r).https})
	})
	for _, prefix := range []string{"", "/api"} {
		p := prefix + "/mss-login"
		m.HandleFunc("GET "+p+"/api/me", s.handleMe)
		m.HandleFunc("GET "+p+"/api/tokens", s.handleListTokens)
		m.HandleFunc("POST "+p+"/api/tokens", s.handleCreateToken)
		m.HandleFunc("DELETE "+p+"/api/tokens/{id}", s.handleRevokeToken)
		m.HandleFunc("POST "+p+"/generate_token", s.handleCreateToken)
		m.HandleFunc("GET "+p+"/api/sessions", s.handleListSessions)
		m.HandleFunc("DELETE "+p+"/api/sessions/{jti}", s.handleRevokeSession)
		m.HandleFunc("POST "+p+"/api/password", s.handleChangePassword)
		m.HandleFunc("GET "+p+"/api/groups", s.handleGroups)
		m.HandleFunc("GET "+p+"/api/users", s.handleListUsers)
		m.HandleFunc("POST "+p+"/api/users", s.handleRegister)
		m.HandleFunc("PUT "+p+"/api/users/{username}", s.handleUpdateUser)
		m.HandleFunc("DELETE "+p+"/api/users/{username}", s.handleDeleteUser)
		m.HandleFunc("GET "+p+"/api/ip-lists", s.handleIPLists)
		m.HandleFunc("GET "+p+"/api/update-status", s.handleUpdateStatus)
		m.HandleFunc("POST "+p+"/api/mfa/setup", s.mfaOnly(s.handleMFASetup))
		m.HandleFunc("POST "+p+"/api/mfa/verify-setup", s.mfaOnly(s.handleMFAVerifySetup))
		m.HandleFunc("POST "+p+"/api/mfa/verify", s.mfaOnly(s.handleMFAVerify))
		m.HandleFunc("DELETE "+p+"/api/mfa", s.handleMFADisable)
	}
	m.HandleFunc("POST /generate_token", s.handleCreateToken)
	m.HandleFunc("POST /api/mss-login/recovery/reset-mfa", s.handleRecovery)
	m.HandleFunc("GET /mss-login/account", s.handleAccount)
	m.HandleFunc("POST /mss-login/account/password", s.handleAccountPassword)
	m.HandleFunc("POST /mss-login/account/tokens", s.handleAccountToken)
	m.HandleFunc("POST /mss-login/account/{kind}/{id}/revoke", s.handleAccountRevoke)
	m.HandleFunc("GET /mss-login/api/news/feed.xml", s.handleNewsFeed)
	m.HandleFunc("GET /api/mss-login/api/news/feed.xml", s.handleNewsFeed)
	m.HandleFunc(authzPrefix+"/auth-request", s.handleForwardAuth)
	m.HandleFunc(authzPrefix+"/forward-auth", s.handleForwardAuth)
	m.HandleFunc(authzPrefix+"/ext-authz/", s.handleForwardAuth)
	return m
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "users database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	id := reqInfo(r).id
	groups := []string{id.role.Name}
	if id.user.Owner {
		groups = []string{"owner", id.role.Name}
	}
	perms := map[string]bool{}
	for _, p := range roles.Permissions {
		perms[p] = id.can(p)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"username": id.user.Username, "role": id.role.Name, "groups": groups, "is_admin": id.isAdmin(),
		"is_owner": id.user.Owner, "mfa_enabled": id.user.MFAEnabled, "experimental_features": s.cfg.ExperimentalFeatures,
		"permissions": perms, "ui": id.role.UI, "managed_by": id.user.OwnerRef,
	})
}

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

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	id := reqInfo(r).id
	list, err := s.db.Sessions(r.Context(), id.user.ID)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	out := []map[string]any{}
	for _, x := range list {
		out = append(out, map[string]any{"id": x.JTI, "created_at": isoOrEmpty(x.CreatedAt), "last_used_at": isoOrEmpty(x.LastUsedAt),
			"expires_at": isoOrEmpty(x.ExpiresAt), "revoked": !x.RevokedAt.IsZero(), "client_ip": x.ClientIP,
			"current": x.JTI == id.jti})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	jti := r.PathValue("jti")
	if storeFailed(w, r, s.db.RevokeSession(r.Context(), jti, rq.id.user.ID), "No such session.") {
		return
	}
	s.cache.markRevoked(jti)
	s.sweepSockets()
	writeJSON(w, http.StatusOK, map[string]any{"message": "Session revoked"})
}

// handleChangePassword changes the caller's password after checking the current one, and ends
// every other session of the account.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	f, _, ok := readForm(w, r)
	if !ok {
		return
	}
	if code, problem := s.changePassword(r, reqInfo(r).id, f["current_password"], f["new_password"]); problem != "" {
		writeError(w, r, code, "PASSWORD_NOT_CHANGED", problem)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Password changed; your other sessions were ended."})
}

// managedBy turns an owner reference ("ComfyUser/team/alice") into "ComfyUser team/alice".
func managedBy(ref string) string {
	kind, rest, _ := strings.Cut(ref, "/")
	return kind + " " + rest
}

func (s *Server) handleGroups(w http.ResponseWriter, _ *http.Request) {
	snap := s.cache.get()
	out := map[string]any{}
	for name, r := range snap.roles {
		out[name] = map[string]any{"permissions": r.Permissions, "ui": r.UI, "builtin": r.Builtin, "managed_by": r.OwnerRef}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListUsers(w http.ResponseWriter, _ *http.Request) {
	snap := s.cache.get()
	out := []map[string]any{}
	for _, u := range snap.usersByID {
		out = append(out, map[string]any{"username": u.Username, "role": u.Role, "owner": u.Owner, "disabled": u.Disabled,
			"mfa_enabled": u.MFAEnabled, "managed_by": u.OwnerRef, "created_at": isoOrEmpty(u.CreatedAt),
			"last_login_at": isoOrEmpty(u.LastLoginAt)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["username"].(string) < out[j]["username"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

// targetUser loads the user named in the path and refuses rows a Kubernetes resource owns.
func (s *Server) targetUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if storeFailed(w, r, err, "No such user.") {
		return u, false
	}
	if u.OwnerRef != "" {
		writeError(w, r, http.StatusConflict, "MANAGED", fmt.Sprintf("managed by %s: change it with kubectl", managedBy(u.OwnerRef)))
		return u, false
	}
	return u, true
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	u, ok := s.targetUser(w, r)
	if !ok {
		return
	}
	f, _, ok := readForm(w, r)
	if !ok {
		return
	}
	if role, set := f["role"]; set {
		if _, ok := s.cache.get().roles[role]; !ok {
			writeError(w, r, http.StatusBadRequest, "BAD_ROLE", "role: no such role")
			return
		}
		u.Role = role
	}
	if d, set := f["disabled"]; set {
		if u.Owner && d == "true" {
			writeError(w, r, http.StatusBadRequest, "OWNER", "disabled: the owner cannot be disabled")
			return
		}
		u.Disabled = d == "true"
	}
	if err := s.db.UpdateUser(r.Context(), u); err != nil {
		writeError(w, r, http.StatusInternalServerError, "FAILED", "Could not update the user.")
		return
	}
	_ = s.cache.refresh(r.Context(), false) // re-checks the user's sockets
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "user.updated", Target: u.Username,
		ClientIP: rq.ip.String(), Detail: fmt.Sprintf("role %s disabled %t", u.Role, u.Disabled)})
	writeJSON(w, http.StatusOK, map[string]any{"message": "User updated"})
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	u, ok := s.targetUser(w, r)
	if !ok {
		return
	}
	if u.Owner || u.ID == rq.id.user.ID {
		writeError(w, r, http.StatusBadRequest, "REFUSED", "The owner and your own account cannot be deleted here.")
		return
	}
	if err := s.db.DeleteUser(r.Context(), u.ID); err != nil {
		writeError(w, r, http.StatusInternalServerError, "FAILED", "Could not delete the user.")
		return
	}
	_ = s.cache.refresh(r.Context(), false) // closes the user's sockets
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "user.deleted", Target: u.Username,
		ClientIP: rq.ip.String()})
	writeJSON(w, http.StatusOK, map[string]any{"message": "User deleted"})
}

// handleIPLists shows the rules in the original's shape (whitelist / blacklist) plus the source.
func (s *Server) handleIPLists(w http.ResponseWriter, r *http.Request) {
	rules, err := s.db.IPRules(r.Context())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	now := s.now()
	white, black := []string{}, []map[string]any{}
	for _, x := range rules {
		if !x.Active(now) {
			continue
		}
		if x.Action == store.Allow {
			white = append(white, x.CIDR.String())
			continue
		}
		e := map[string]any{"ip": x.CIDR.String(), "permanent": x.ExpiresAt.IsZero(), "source": x.Source,
			"reason": x.Reason, "managed_by": x.OwnerRef}
		if !x.ExpiresAt.IsZero() {
			e["expires_at"] = isoOrEmpty(x.ExpiresAt)
		}
		black = append(black, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"whitelist": white, "blacklist": black})
}

// handleUpdateStatus returns what the manager's release check stored (the original's fields).
func (s *Server) handleUpdateStatus(w http.ResponseWriter, r *http.Request) {
	v, ok, err := s.db.Setting(r.Context(), "update_status")
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"update_available": false, "mode": "notify", "checked": false})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(v))
}

const mfaCodeNeeded = "MFA code required: repeat the request with code (or backup_code)."

// tokenCaller authenticates a token request that carries username and password (and, with MFA
// enrolled, a code). It returns nil and a message on failure; every failure is a counted attempt.
func (s *Server) tokenCaller(r *http.Request, f map[string]string) (*identity, string) {
	const invalid = "Invalid credentials"
	u, _ := s.userByName(r.Context(), f["username"])
	ok, ref, err := s.confirmPassword(r, u, f["password"])
	switch {
	case err != nil:
		return nil, "The users database is not reachable."
	case ref != nil:
		return nil, ref.message()
	case !ok || u.Disabled:
		return nil, invalid
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
