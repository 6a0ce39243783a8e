package authserver

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// form reads a form or JSON body into a string map (bounded size).
func form(r *http.Request) (map[string]string, bool, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 64<<10)
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	out := map[string]string{}
	if ct == "application/json" {
		var raw map[string]any
		if err := json.NewDecoder(r.Body).Decode(&raw); err != nil {
			return nil, true, err
		}
		for k, v := range raw {
			switch t := v.(type) {
			case string:
				out[k] = t
			case bool:
				out[k] = map[bool]string{true: "true", false: "false"}[t]
			case float64:
				out[k] = strconv.FormatFloat(t, 'f', -1, 64)
			}
		}
		return out, true, nil
	}
	if err := r.ParseForm(); err != nil {
		return nil, false, err
	}
	for k := range r.PostForm {
		out[k] = r.PostForm.Get(k)
	}
	return out, false, nil
}

// readForm is form for a handler: an unreadable body is answered with 400 (ok false).
func readForm(w http.ResponseWriter, r *http.Request) (f map[string]string, isJSON, ok bool) {
	f, isJSON, err := form(r)
	if err != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_REQUEST", "Unreadable request.")
		return nil, false, false
	}
	return f, isJSON, true
}

// safeNext keeps a post-login redirect on this site: a path, never a scheme or host.
func safeNext(next string) string {
	if next == "" || !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	u, err := url.Parse(next)
	if err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

func (s *Server) handleLoginPage(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	if len(s.cache.get().usersByID) == 0 {
		http.Redirect(w, r, "/register", http.StatusFound)
		return
	}
	next := safeNext(r.URL.Query().Get("next"))
	if rq.id != nil {
		http.Redirect(w, r, next, http.StatusFound)
		return
	}
	renderPage(w, http.StatusOK, "login.html", s.loginPage(next, map[string]any{"News": s.newsItems()}))
}

// loginPage is the login page's data: the form, the guest button, the provider's button.
func (s *Server) loginPage(next string, extra map[string]any) map[string]any {
	d := map[string]any{"Next": next, "Guest": s.cfg.AllowGuestJWT, "Password": s.sso == nil || s.cfg.OIDC.PasswordLogin}
	if s.sso != nil {
		d["SSO"], d["SSOLabel"] = ssoLogin+"?next="+url.QueryEscape(next), s.cfg.OIDC.ButtonLabel
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// handleLogin checks a password (or logs in the guest) and starts a session. A refused or
// failed attempt costs the client; a banned or cooling-down client gets no password hash.
func (s *Server) handleLogin(w http.ResponseWriter, r *http.Request) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	f, isJSON, ok := readForm(w, r)
	if !ok {
		return
	}
	next := safeNext(f["next"])
	// A refusal: the login page again for a browser.
	fail := func(code int, msg string) {
		answer(w, r, isJSON, code, map[string]any{"error": msg}, func() {
			renderPage(w, code, "login.html", s.loginPage(next, map[string]any{"Error": msg}))
		})
	}
	if f["guest_login"] == "true" {
		if !s.cfg.AllowGuestJWT {
			fail(http.StatusForbidden, "Guest login is disabled.")
			return
		}
		u, err := s.guestUser(ctx)
		if err != nil {
			s.log.Error("guest login failed", "error", err)
			fail(http.StatusInternalServerError, "Guest login failed.")
			return
		}
		s.completeLogin(w, r, u, next, isJSON)
		return
	}
	username, pw := f["username"], f["password"]
	att, ref, err := s.beginAttempt(ctx, rq.ip, rq.device, now)
	if err != nil {
		s.log.Error("counting a login attempt failed", "error", err)
		fail(http.StatusServiceUnavailable, "Login is unavailable at the moment.")
		return
	}
	if ref != nil {
		s.metrics.auth.WithLabelValues("login_refused").Inc()
		answer(w, r, isJSON, http.StatusForbidden, ref.body(), func() { fail(http.StatusForbidden, ref.message()) })
		return
	}
	if d := s.userThrottle(ctx, username, now); d > 0 {
		time.Sleep(d)
	}
	start := time.Now()
	u, _ := s.userByName(ctx, username)
	res := s.checkPassword(u, pw, start)
	if !res.OK || u.Disabled {
		if res.OK {
			s.timing.pad(start) // a disabled account with its right password answers as late as a wrong one
		}
		att.finish(ctx, false, now)
		s.countUserFailure(ctx, username, now)
		s.metrics.auth.WithLabelValues("login_failure").Inc()
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: truncateString(username, 128), Action: "login.failure",
			ClientIP: rq.ip.String(), Detail: "invalid credentials"})
		if s.sso != nil && !s.cfg.OIDC.PasswordLogin {
			fail(http.StatusUnauthorized, s.passwordSignInOff())
			return
		}
		fail(http.StatusUnauthorized, "Invalid credentials")
		return
	}
	if !s.passwordSignIn(u) {
		// The right password, but passwords are the owner's only here: answered and counted as
		// a wrong one, so that no password can be confirmed through this form.
		att.finish(ctx, false, now)
		s.timing.pad(start)
		fail(http.StatusUnauthorized, s.passwordSignInOff())
		return
	}
	step := s.mfaStep(u, s.cache.get().roles[u.Role])
	if step == "" {
		att.finish(ctx, true, now)
	} else {
		// A second factor is still to come: the right password takes back only its own
		// attempt. Resetting here would let a known password wipe the count that limits
		// guessing the codes; the right code resets it.
		att.uncount(ctx)
	}
	if res.Rehash {
		// The same password, hashed more strongly: not a password change (its time stays).
		if h, err := password.Hash(pw); err == nil {
			if _, err := s.db.RehashPassword(ctx, u.ID, u.PasswordHash, h); err != nil {
				s.log.Warn("re-hashing a password failed", "user", u.Username, "error", err)
			}
		}
	}
	if step != "" {
		s.respondMFA(w, r, u, step, next, isJSON)
		return
	}
	s.completeLogin(w, r, u, next, isJSON)
}

// userByName finds a user in the cache or, when created on another replica since the last
// refresh, in the database.
func (s *Server) userByName(ctx context.Context, username string) (store.User, bool) {
	if u, ok := s.cache.get().usersByName[username]; ok {
		return u, true
	}
	u, err := s.db.UserByName(ctx, username)
	if err != nil {
		return store.User{}, false
	}
	return u, true
}

// completeLogin starts a session for u: a row (revocable), a JWT naming it, the cookie.
func (s *Server) completeLogin(w http.ResponseWriter, r *http.Request, u store.User, next string, isJSON bool) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	if _, cached := s.cache.get().usersByID[u.ID]; !cached {
		// Created a moment ago (by the operator or another replica): load it now, so that the
		// very next request with this session is recognised.
		_ = s.cache.refresh(ctx, false)
	}
	token, expires, err := s.startSession(ctx, u, rq, now)
	if err != nil {
		s.log.Error("starting a session failed", "error", err)
		writeError(w, r, http.StatusInternalServerError, "SESSION_FAILED", "Could not start a session.")
		return
	}
	_ = s.db.RecordLogin(ctx, u.ID, now)
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: u.Username, Action: "login.success", ClientIP: rq.ip.String()})
	s.metrics.auth.WithLabelValues("login_success").Inc()
	setSessionCookie(w, token, expires, now, rq.https)
	// Scripts and apps (Krita, Comfy Portal) use the token as a Bearer; browsers get only the
	// HttpOnly cookie.
	answer(w, r, isJSON, http.StatusOK, map[string]any{"message": "Login successful", "jwt_token": token,
		"redirect_url": next, "expires_at": expires.Format(time.RFC3339)},
		func() { http.Redirect(w, r, next, http.StatusSeeOther) })
}

func setSessionCookie(w http.ResponseWriter, token string, expires, now time.Time, https bool) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: token, Path: "/", HttpOnly: true, Secure: https,
		SameSite: http.SameSiteStrictMode, Expires: expires, MaxAge: int(expires.Sub(now).Seconds())})
}

func (s *Server) startSession(ctx context.Context, u store.User, rq *request, now time.Time) (string, time.Time, error) {
	jti := randomID()
	expires := now.Add(time.Duration(s.cfg.AccessTokenExpirationHours) * time.Hour)
	sess := store.Session{JTI: jti, UserID: u.ID, CreatedAt: now, ExpiresAt: expires, ClientIP: rq.ip.String()}
	if err := s.db.CreateSession(ctx, &sess); err != nil {
		return "", time.Time{}, err
	}
	cached := &session{userID: u.ID, expiresAt: expires}
	cached.lastUsed.Store(now.UnixMilli())
	s.cache.sessions.Store(jti, cached)
	token, err := s.signer.issue(u.ID, u.Username, jti, now, expires)
	return token, expires, err
}

// guestUser returns the built-in guest account, creating it on first use with an unusable
// password (the original: a random UUID).
func (s *Server) guestUser(ctx context.Context) (store.User, error) {
	if u, err := s.db.UserByName(ctx, roles.Guest); err == nil {
		return u, nil
	}
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	h, err := password.Hash(string(b))
	if err != nil {
		return store.User{}, err
	}
	u := store.User{Username: roles.Guest, Role: roles.Guest, PasswordHash: h}
	if err := s.db.CreateUser(ctx, &u); err != nil && !errors.Is(err, store.ErrConflict) {
		return store.User{}, err
	}
	return s.db.UserByName(ctx, roles.Guest)
}

// handleLogout revokes the session and clears the cookie. GET shows a confirmation unless the
// request is same-origin (a cross-site GET must not log anyone out).
func (s *Server) handleLogout(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	if r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		renderPage(w, http.StatusOK, "logout.html", nil)
		return
	}
	if r.Method != http.MethodGet && !sameOrigin(r, s.hostBase()) {
		writeError(w, r, http.StatusForbidden, "CROSS_SITE", "Cross-site request refused.")
		return
	}
	var unsaved bool
	if rq.id != nil && rq.id.jti != "" {
		if err := s.cache.revoke(r.Context(), rq.id.jti, ""); err != nil && !errors.Is(err, store.ErrNotFound) {
			s.log.Warn("revoking a session at logout failed; retrying until the database takes it", "error", err)
			unsaved = true
		}
		s.sweepSockets()
		_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "logout", ClientIP: rq.ip.String()})
	}
	// The cookie is cleared either way: this browser is signed out.
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: rq.https,
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
	if unsaved {
		// Never a success that is not one: the other replicas accept the session until the
		// revocation is stored (retried every refresh while this process runs).
		writeError(w, r, http.StatusServiceUnavailable, "LOGOUT_INCOMPLETE",
			"Signed out in this browser, but the users database is not reachable: the session could not be revoked everywhere yet. "+
				"It is retried automatically; to be sure, sign out again once the service is back, or revoke the session from your account page.")
		return
	}
	if isNavigation(r) || r.Header.Get("Content-Type") == "application/x-www-form-urlencoded" {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Logged out"})
}

// validatePassword applies the password policy (password.CheckPolicy).
func validatePassword(p string) error { return password.CheckPolicy(p) }

func (s *Server) handleRegister(w http.ResponseWriter, r *http.Request) {
	ctx, rq := r.Context(), reqInfo(r)
	n, err := s.db.CountUsers(ctx)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	firstRun := n == 0
	if !firstRun {
		if rq.id == nil {
			if r.Method == http.MethodGet {
				http.Redirect(w, r, "/login?next=/register", http.StatusFound)
				return
			}
			writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED", "Authentication required.")
			return
		}
		if !rq.id.isAdmin() {
			writeError(w, r, http.StatusForbidden, "ADMIN_REQUIRED", "Only an admin can create accounts.")
			return
		}
	}
	page := map[string]any{"FirstRun": firstRun, "Roles": slices.Sorted(maps.Keys(s.cache.get().roles))}
	if r.Method == http.MethodGet {
		renderPage(w, http.StatusOK, "register.html", page)
		return
	}
	f, isJSON, ok := readForm(w, r)
	if !ok {
		return
	}
	pick := func(a, b string) string {
		if f[a] != "" {
			return f[a]
		}
		return f[b]
	}
	username, pw := pick("username", "new_user_username"), pick("password", "new_user_password")
	// A refusal: the form again for a browser.
	fail := func(code int, msg string) {
		answer(w, r, isJSON, code, map[string]any{"error": msg}, func() {
			page["Error"] = msg
			renderPage(w, code, "register.html", page)
		})
	}
	if err := store.ValidateUsername(username); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	if err := validatePassword(pw); err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	hash, err := password.Hash(pw)
	if err != nil {
		fail(http.StatusBadRequest, err.Error())
		return
	}
	u := store.User{Username: username, PasswordHash: hash, Role: roles.User}
	if firstRun {
		u.Role, u.Owner = roles.Admin, true
	} else if role := f["role"]; role != "" {
		if _, ok := s.cache.get().roles[role]; !ok {
			fail(http.StatusBadRequest, "role: no such role")
			return
		}
		u.Role = role
	}
	switch err := s.db.CreateUser(ctx, &u); {
	case errors.Is(err, store.ErrConflict):
		fail(http.StatusConflict, "username: already taken")
		return
	case errors.Is(err, store.ErrOwnerTaken):
		fail(http.StatusConflict, "the owner was created by someone else a moment ago")
		return
	case err != nil:
		s.log.Error("creating a user failed", "error", err)
		fail(http.StatusInternalServerError, "Could not create the account.")
		return
	}
	actor := username
	if rq.id != nil {
		actor = rq.id.user.Username
	}
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: actor, Action: "user.created", Target: username, ClientIP: rq.ip.String(),
		Detail: "role " + u.Role})
	_ = s.cache.refresh(ctx, false)
	if firstRun {
		s.completeLogin(w, r, u, "/", isJSON)
		return
	}
	answer(w, r, isJSON, http.StatusCreated, map[string]any{"message": "User created", "username": u.Username, "role": u.Role},
		func() { http.Redirect(w, r, safeNext(f["next"]), http.StatusSeeOther) }) // the console's form comes back to it
}
