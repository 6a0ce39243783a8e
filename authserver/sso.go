package authserver

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/crypt"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

// Single sign-on (docs/authserver.md#single-sign-on): the authorization code flow with PKCE,
// state and nonce kept in a short-lived cookie signed with a key of SECRET_KEY, the ID token
// verified against the issuer's keys (go-oidc), then a session like any other.

const (
	ssoCookie   = "mss_sso"
	ssoLogin    = "/mss-login/sso/login"
	ssoCallback = "/mss-login/sso/callback"
	ssoMaxAge   = 10 * time.Minute
)

// sso is the provider, discovered at the first use (and again after a failure).
type sso struct {
	cfg config.OIDC
	key []byte // signs the flow cookie

	mu       sync.Mutex
	provider *oidc.Provider
}

func newSSO(cfg *config.Config) (*sso, error) {
	if !cfg.OIDC.Enabled() {
		return nil, nil
	}
	key, err := crypt.SubKey(cfg.SecretKey.Reveal(), "mss-login-sso-flow-v1")
	if err != nil {
		return nil, err
	}
	return &sso{cfg: cfg.OIDC, key: key}, nil
}

func (o *sso) discover(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(providerContext(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, err
	}
	o.provider = p
	return p, nil
}

func (o *sso) oauth(p *oidc.Provider, redirect string) *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret.Reveal(), Endpoint: p.Endpoint(),
		RedirectURL: redirect, Scopes: o.cfg.Scopes}
}

// providerClient bounds every call to the provider (discovery, keys, token exchange): a slow
// provider must not hold a request forever.
var providerClient = &http.Client{Timeout: 10 * time.Second}

// providerContext makes go-oidc and x/oauth2 use providerClient.
func providerContext(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, providerClient)
}

// flow is what the cookie carries between the redirect to the provider and the callback.
type flow struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"x"`
	Expires  int64  `json:"e"`
}

func (o *sso) seal(f flow) string {
	raw, _ := json.Marshal(f)
	body := base64.RawURLEncoding.EncodeToString(raw)
	return body + "." + o.mac(body)
}

func (o *sso) mac(body string) string {
	m := hmac.New(sha256.New, o.key)
	m.Write([]byte(body))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// open checks the cookie's signature and age.
func (o *sso) open(v string, now time.Time) (flow, bool) {
	body, sig, ok := strings.Cut(v, ".")
	if !ok || !hmac.Equal([]byte(sig), []byte(o.mac(body))) {
		return flow{}, false
	}
	raw, err := base64.RawURLEncoding.DecodeString(body)
	var f flow
	if err != nil || json.Unmarshal(raw, &f) != nil || now.Unix() > f.Expires {
		return flow{}, false
	}
	return f, true
}

// redirectURL is the callback address the provider sends the browser back to.
func (s *Server) ssoRedirectURL(r *http.Request) string {
	if base := s.hostBase(); base != "" {
		return strings.TrimRight(base, "/") + ssoCallback
	}
	scheme := "http"
	if reqInfo(r).https {
		scheme = "https"
	}
	return scheme + "://" + r.Host + ssoCallback
}

// handleSSOLogin sends the browser to the provider.
func (s *Server) handleSSOLogin(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		writeError(w, r, http.StatusNotFound, "SSO_OFF", "Single sign-on is not configured.")
		return
	}
	p, err := s.sso.discover(r.Context())
	if err != nil {
		s.log.Warn("the OpenID Provider is not reachable", "issuer", s.cfg.OIDC.Issuer, "error", err)
		s.ssoRefuse(w, r, http.StatusBadGateway, "The sign-in provider cannot be reached; try again, or sign in with a password.")
		return
	}
	now := s.now()
	// A sign-in another site started goes to /, not where that site asked: the provider may sign
	// an already signed-in person in silently, and the page that follows is same-origin.
	next := "/"
	if site := r.Header.Get("Sec-Fetch-Site"); site == "same-origin" || site == "none" {
		next = safeNext(r.URL.Query().Get("next"))
	}
	f := flow{State: randomID(), Nonce: randomID(), Verifier: oauth2.GenerateVerifier(),
		Next: next, Expires: now.Add(ssoMaxAge).Unix()}
	// Lax: the provider's redirect back is a cross-site top-level GET, which must carry it.
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: s.sso.seal(f), Path: "/mss-login/sso/", HttpOnly: true,
		Secure: reqInfo(r).https, SameSite: http.SameSiteLaxMode, MaxAge: int(ssoMaxAge.Seconds())})
	http.Redirect(w, r, s.sso.oauth(p, s.ssoRedirectURL(r)).AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier)), http.StatusFound)
}

// handleSSOCallback takes the provider's answer: state, code exchange with the PKCE verifier,
// the ID token (issuer, audience, expiry, signature, nonce), the MFA claims, the group → role
// mapping, the user row; then a session.
func (s *Server) handleSSOCallback(w http.ResponseWriter, r *http.Request) {
	if s.sso == nil {
		writeError(w, r, http.StatusNotFound, "SSO_OFF", "Single sign-on is not configured.")
		return
	}
	ctx, now, rq := r.Context(), s.now(), reqInfo(r)
	c, err := r.Cookie(ssoCookie)
	// The flow cookie is used once.
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: "/mss-login/sso/", HttpOnly: true, Secure: rq.https, MaxAge: -1})
	var f flow
	ok := err == nil
	if ok {
		f, ok = s.sso.open(c.Value, now)
	}
	q := r.URL.Query()
	if !ok || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(f.State)) != 1 {
		s.ssoFailure(ctx, rq, "", "state missing, expired or not this browser's")
		s.ssoRefuse(w, r, http.StatusBadRequest, "This sign-in was not started here or took too long. Start again.")
		return
	}
	if e := q.Get("error"); e != "" {
		s.ssoFailure(ctx, rq, "", "the provider answered "+oneWord(e))
		s.ssoRefuse(w, r, http.StatusForbidden, "The sign-in provider did not sign you in.")
		return
	}
	p, err := s.sso.discover(ctx)
	if err != nil {
		s.ssoRefuse(w, r, http.StatusBadGateway, "The sign-in provider cannot be reached; try again.")
		return
	}
	tok, err := s.sso.oauth(p, s.ssoRedirectURL(r)).Exchange(providerContext(ctx), q.Get("code"), oauth2.VerifierOption(f.Verifier))
	if err != nil {
		s.ssoFailure(ctx, rq, "", "code exchange failed")
		s.ssoRefuse(w, r, http.StatusForbidden, "The sign-in could not be completed. Start again.")
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	claims, err := s.sso.verify(providerContext(ctx), p, raw, f.Nonce)
	if err != nil {
		s.ssoFailure(ctx, rq, "", err.Error())
		s.ssoRefuse(w, r, http.StatusForbidden, "The sign-in could not be verified. Start again.")
		return
	}
	u, msg := s.ssoUser(ctx, claims, now)
	if msg != "" {
		s.ssoFailure(ctx, rq, claims.username, msg)
		s.ssoRefuse(w, r, http.StatusForbidden, msg)
		return
	}
	if !s.sso.providerMFA() {
		if step := s.mfaStep(u, s.cache.get().roles[u.Role]); step != "" {
			s.respondMFA(w, r, u, step, f.Next, false)
			return
		}
	}
	s.completeSSOLogin(w, r, u, f.Next)
}

// ssoClaims is what mss-login reads of an ID token.
type ssoClaims struct {
	subject  string
	claimed  string // the username claim as sent
	username string // made a username: characters other than letters, digits and _ become _
	groups   []string
}

// usernameChars are the characters a username may hold; others become "_".
var usernameChars = regexp.MustCompile(`[^A-Za-z0-9_]`)

// verify checks the ID token and the configured MFA claims, and reads the username and groups.
func (o *sso) verify(ctx context.Context, p *oidc.Provider, raw, nonce string) (ssoClaims, error) {
	if raw == "" {
		return ssoClaims{}, errors.New("no ID token in the token answer")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID}).Verify(ctx, raw)
	if err != nil {
		return ssoClaims{}, fmt.Errorf("ID token refused: %s", oneLine(err.Error()))
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(nonce)) != 1 {
		return ssoClaims{}, errors.New("ID token refused: nonce is not this sign-in's")
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		return ssoClaims{}, errors.New("ID token refused: unreadable claims")
	}
	if len(o.cfg.RequireAMR) > 0 && !slices.ContainsFunc(strings_(all["amr"]), func(a string) bool { return slices.Contains(o.cfg.RequireAMR, a) }) {
		return ssoClaims{}, errors.New("ID token refused: no required amr (multi-factor sign-in at the provider)")
	}
	if len(o.cfg.RequireACR) > 0 {
		if acr, _ := all["acr"].(string); !slices.Contains(o.cfg.RequireACR, acr) {
			return ssoClaims{}, errors.New("ID token refused: acr is not one of the required")
		}
	}
	claimed, _ := all[o.cfg.UsernameClaim].(string)
	return ssoClaims{subject: store.SSOSubject(o.cfg.Issuer, idt.Subject), claimed: claimed,
		username: usernameChars.ReplaceAllString(claimed, "_"), groups: strings_(all[o.cfg.GroupsClaim])}, nil
}

// passwordSignIn says whether u may sign in with a password: always, unless single sign-on
// is on with oidc.password_login false, which leaves the password to the owner (break-glass).
func (s *Server) passwordSignIn(u store.User) bool {
	return s.sso == nil || s.cfg.OIDC.PasswordLogin || u.Owner
}

// passwordSignInOff is the answer to every failed password sign-in while passwords are the
// owner's only — the same for a right password as for a wrong one, so it tells nothing.
func (s *Server) passwordSignInOff() string {
	return "Invalid credentials. Password sign-in is for the owner only here: use " + s.cfg.OIDC.ButtonLabel + "."
}

// providerMFA says whether the provider's MFA claims stand for mss-login's own second factor.
func (o *sso) providerMFA() bool { return len(o.cfg.RequireAMR) > 0 || len(o.cfg.RequireACR) > 0 }

// strings_ reads a claim that is a list of strings (or one string).
func strings_(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, x := range v {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// ssoUser finds or makes the user an identity signs in as, with the role its groups map to;
// msg says why it may not.
func (s *Server) ssoUser(ctx context.Context, c ssoClaims, now time.Time) (store.User, string) {
	role := s.cfg.OIDC.RoleFor(c.groups)
	if role == "" {
		// Out of the mapped groups now: what a linked user still holds goes too.
		if linked, err := s.db.SSOIdentityBySubject(ctx, c.subject); err == nil {
			_ = s.db.RevokeUserCredentials(ctx, linked.UserID)
			_ = s.db.LinkSSOIdentity(ctx, store.SSOIdentity{Subject: c.subject, UserID: linked.UserID, Groups: c.groups}, now)
		}
		return store.User{}, "Your account is not in a group that may use this ComfyUI."
	}
	if _, ok := s.cache.get().roles[role]; !ok {
		s.log.Error("oidc.group_roles names a role that does not exist", "role", role)
		return store.User{}, "Your group's role does not exist here; tell an administrator."
	}
	var u store.User
	linked, err := s.db.SSOIdentityBySubject(ctx, c.subject)
	switch {
	case err == nil:
		if u, err = s.db.UserByID(ctx, linked.UserID); err != nil && !errors.Is(err, store.ErrNotFound) {
			return store.User{}, "The users database is not reachable; try again."
		}
	case !errors.Is(err, store.ErrNotFound):
		return store.User{}, "The users database is not reachable; try again."
	}
	if u.ID == "" { // not linked (or the linked user is gone)
		if c.claimed == "" {
			return store.User{}, "The sign-in provider sent no username (" + s.cfg.OIDC.UsernameClaim + ")."
		}
		if err := store.ValidateUsername(c.username); err != nil {
			return store.User{}, "Your username at the provider cannot be used here (" + err.Error() + ")."
		}
		existing, found := s.userByName(ctx, c.username)
		switch {
		case found && s.cfg.OIDC.Users == "existing" && (c.claimed != c.username || existing.Username != c.claimed):
			// Linking by name must be by exactly that name: "bob.smith" and "Bob_Smith" are not
			// the account "bob_smith" someone made for another person.
			return store.User{}, "Your username at the provider is not exactly an account's name here."
		case found && existing.Owner:
			return store.User{}, "The owner signs in with a password, not through the provider."
		case found && s.cfg.OIDC.Users == "existing":
			// Named in advance (a ComfyUser, the console): linked now — unless another identity
			// holds it already (someone who renamed themselves at the provider to take it).
			if _, err := s.db.SSOIdentityOfUser(ctx, existing.ID); err == nil {
				return store.User{}, "This account is linked to another sign-in identity."
			} else if !errors.Is(err, store.ErrNotFound) {
				return store.User{}, "The users database is not reachable; try again."
			}
			u = existing
		case found:
			return store.User{}, "A local account has this name; an administrator can link it (oidc.users: existing)."
		case s.cfg.OIDC.Users == "existing":
			return store.User{}, "There is no account for you here; ask an administrator for one."
		default:
			// A password no one knows (as the guest's): this user signs in through the provider.
			b := make([]byte, 32)
			_, _ = rand.Read(b)
			h, err := password.Hash(string(b))
			if err != nil {
				return store.User{}, "Your account could not be created."
			}
			nu := store.User{Username: c.username, Role: role, PasswordHash: h}
			if err := s.db.CreateUser(ctx, &nu); err != nil {
				s.log.Warn("creating a single sign-on user failed", "user", c.username, "error", err)
				return store.User{}, "Your account could not be created; try again, or tell an administrator."
			}
			_ = s.db.Audit(ctx, store.AuditEvent{Actor: "sso", Action: "user.created", Target: nu.Username, Detail: "first single sign-on, role " + role})
			u = nu
		}
	}
	if u.Disabled {
		return store.User{}, "Your account is disabled."
	}
	if u.Role != role && u.OwnerRef == "" && !u.Owner {
		prev := u
		u.Role = role
		if err := s.db.UpdateUser(ctx, u); err != nil {
			return store.User{}, "The users database is not reachable; try again."
		}
		_ = s.db.Audit(ctx, store.AuditEvent{Actor: "sso", Action: store.UserChangeAction(&prev, u), Target: u.Username,
			Detail: "role " + prev.Role + " → " + role + " from the provider's groups"})
	}
	if err := s.db.LinkSSOIdentity(ctx, store.SSOIdentity{Subject: c.subject, UserID: u.ID, Groups: c.groups}, now); errors.Is(err, store.ErrConflict) {
		return store.User{}, "This account is linked to another sign-in identity."
	} else if err != nil {
		return store.User{}, "The users database is not reachable; try again."
	}
	return u, ""
}

// completeSSOLogin starts the session. The answer is a page that moves on by itself: the
// provider's redirect was a cross-site navigation, on which a SameSite=Strict cookie set now
// would not be sent; a navigation from this page is same-site.
func (s *Server) completeSSOLogin(w http.ResponseWriter, r *http.Request, u store.User, next string) {
	ctx, rq, now := r.Context(), reqInfo(r), s.now()
	_ = s.cache.refresh(ctx, false)
	token, expires, err := s.startSession(ctx, u, rq, now)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "SESSION_FAILED", "Could not start a session.")
		return
	}
	_ = s.db.RecordLogin(ctx, u.ID, now)
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: u.Username, Action: "login.success", ClientIP: rq.ip.String(), Detail: "single sign-on"})
	s.metrics.auth.WithLabelValues("login_success").Inc()
	setSessionCookie(w, token, expires, now, rq.https)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Referrer-Policy", "no-referrer") // the callback URL holds the code
	_ = ssoDone.Execute(w, next)
}

var ssoDone = template.Must(template.New("done").Parse(`<!doctype html><meta charset="utf-8">` +
	`<meta http-equiv="refresh" content="0;url={{.}}"><title>Signed in</title><p>Signed in. <a href="{{.}}">Continue</a></p>`))

func (s *Server) ssoRefuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeError(w, r, code, "SSO_REFUSED", msg)
}

// ssoFailure writes the audit entry of a refused sign-in (the reason never holds a token).
func (s *Server) ssoFailure(ctx context.Context, rq *request, username, why string) {
	s.metrics.auth.WithLabelValues("login_failure").Inc()
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: truncateString(username, 128), Action: "sso.refused", ClientIP: rq.ip.String(), Detail: why})
}

func oneWord(s string) string {
	if len(s) > 40 {
		s = s[:40]
	}
	return usernameChars.ReplaceAllString(s, "_")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// applySSOMapping re-applies the group → role mapping to every linked user with the groups of
// their last sign-in, at start: a user whose groups the mapping no longer admits loses their
// sessions and API tokens, one whose role changed gets the new role. Run by every replica;
// idempotent.
func (s *Server) applySSOMapping(ctx context.Context) {
	if s.sso == nil {
		return
	}
	ids, err := s.db.SSOIdentities(ctx)
	if err != nil {
		s.log.Warn("re-applying the single sign-on mapping failed", "error", err)
		return
	}
	for _, id := range ids {
		u, err := s.db.UserByID(ctx, id.UserID)
		if err != nil || u.Owner {
			continue // gone, or the owner (whose password is the way in)
		}
		switch role := s.cfg.OIDC.RoleFor(id.Groups); {
		case role == "":
			if err := s.db.RevokeUserCredentials(ctx, u.ID); err == nil {
				s.log.Info("single sign-on mapping no longer admits a user: sessions revoked", "user", u.Username)
				_ = s.db.Audit(ctx, store.AuditEvent{Actor: "sso", Action: "sessions.revoked", Target: u.Username, Detail: "the group mapping no longer admits the user"})
			}
		case role != u.Role && u.OwnerRef == "": // a ComfyUser's role is the resource's
			prev := u
			u.Role = role
			if err := s.db.UpdateUser(ctx, u); err == nil {
				_ = s.db.Audit(ctx, store.AuditEvent{Actor: "sso", Action: store.UserChangeAction(&prev, u), Target: u.Username, Detail: "the group mapping changed"})
			}
		}
	}
}
