package testenv

// A real OpenID Provider for the single sign-on tests (issue 18): the example OP that ships
// with github.com/zitadel/oidc/v3 (example/server/exampleop and example/server/storage, used
// as libraries), started in-process on 127.0.0.1 with our own users, groups and amr.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"github.com/zitadel/oidc/v3/pkg/crypto"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
	"golang.org/x/text/language"
)

// OIDCUser is a user of an OIDCProvider.
type OIDCUser struct {
	Username string // typed into the login page; the "preferred_username" claim (scope profile)
	Password string
	Email    string // the "email" claim (scope email), email_verified true
	// Groups is the "groups" claim, a JSON array of strings, in every ID token of the user
	// whatever the scopes; nil leaves the claim out, an empty slice gives "groups": [].
	Groups []string
	// AMR is the "amr" claim of the user's ID tokens (for example ["pwd", "otp"]); empty
	// gives the example OP's ["pwd"].
	AMR []string
	// Subject is the "sub" claim; empty gives "sub-" + Username.
	Subject string
}

// OIDCProvider is a running OpenID Provider on http://127.0.0.1:PORT with one confidential
// client: ClientID and ClientSecret, client_secret_basic (client_secret_post also works), the
// authorization code flow with PKCE S256 (PKCE is optional for this client, as for any web
// client of the library), and the redirect URIs given to StartOIDCProvider, http ones included
// (the client is in the library's dev mode).
//
// The provider keeps no browser session: every authorization request shows the login page, so
// prompt=none always ends in login_required. Discovery is at Issuer +
// "/.well-known/openid-configuration"; the endpoints are those of the example OP (authorization
// /auth, token /oauth/token, userinfo /userinfo, keys /keys, end session /end_session).
// Each request is logged at level Info through the process's default slog logger (the example
// OP's middleware).
//
// The login page (GET /login/username?authRequestID=…, the example OP's own page) is one HTML
// form, method POST, action "/login/username":
//
//	<input id="username" name="username">
//	<input id="password" name="password" type="password">
//	<input type="hidden" name="id" value="AUTH REQUEST ID">
//	<button type="submit">Login</button>
//
// so a chromedp test does
//
//	chromedp.SendKeys("#username", user, chromedp.ByQuery),
//	chromedp.SendKeys("#password", password, chromedp.ByQuery),
//	chromedp.Click(`button[type="submit"]`, chromedp.ByQuery),
//
// A wrong username or password shows the same page again (status 200) with the message
// "username or password wrong" in a red <p>.
//
// ID tokens carry iss, sub, aud, nonce (echoed), amr, "groups" and, when the scopes profile
// and email were asked for, preferred_username, email and email_verified (the client asserts
// userinfo claims into the ID token even though an access token is issued).
type OIDCProvider struct {
	Issuer       string // http://127.0.0.1:PORT, no trailing slash
	ClientID     string
	ClientSecret string
	RedirectURIs []string

	storage *oidcStorage
	mu      sync.Mutex
	// postLogout are the allowed post_logout_redirect_uri values.
	postLogout []string
	// rewrite, when set, alters the ID token of every token response (RewriteIDTokens).
	rewrite       func(claims map[string]any)
	rewriteSigner *OIDCProvider
}

// StartOIDCProvider starts an OpenID Provider on a free loopback port and stops it when the
// test ends. Several can run at once, each with its own issuer, client, signing key and users.
// Users are told apart by Username and by Subject.
func StartOIDCProvider(t testing.TB, redirectURIs []string, users ...OIDCUser) *OIDCProvider {
	t.Helper()
	if len(redirectURIs) == 0 {
		t.Fatal("oidc provider: no redirect URI")
	}
	us := oidcUsers{byID: map[string]*storage.User{}, extra: map[string]OIDCUser{}}
	for _, u := range users {
		if u.Subject == "" {
			u.Subject = "sub-" + u.Username
		}
		if _, dup := us.byID[u.Subject]; dup || us.GetUserByUsername(u.Username) != nil {
			t.Fatalf("oidc provider: user %q (subject %q) given twice", u.Username, u.Subject)
		}
		us.byID[u.Subject] = &storage.User{
			ID:                u.Subject,
			Username:          u.Username,
			Password:          u.Password,
			Email:             u.Email,
			EmailVerified:     true,
			PreferredLanguage: language.English,
		}
		u.Groups, u.AMR = slices.Clone(u.Groups), slices.Clone(u.AMR)
		us.extra[u.Subject] = u
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("oidc provider: listen: %v", err)
	}
	p := &OIDCProvider{
		Issuer:       "http://" + ln.Addr().String(),
		ClientID:     "mss-login-" + randomHex(4),
		ClientSecret: randomHex(16),
		RedirectURIs: slices.Clone(redirectURIs),
	}
	client := storage.WebClient(p.ClientID, p.ClientSecret, redirectURIs...)
	p.storage = &oidcStorage{
		Storage:  storage.NewStorageWithClients(us, map[string]*storage.Client{p.ClientID: client}),
		users:    us,
		provider: p,
	}

	// A nil logger keeps the process's slog default as it is.
	handler := exampleop.SetupServer(p.Issuer, p.storage, nil, false)
	srv := &http.Server{
		Handler:           p.rewriteTokenResponses(handler),
		ReadHeaderTimeout: 10 * time.Second,
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("oidc provider %s: %v", p.Issuer, err)
		}
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
	})
	return p
}

// AllowPostLogoutRedirect adds post_logout_redirect_uri values that the end session endpoint
// accepts (exact match). Without one, /end_session redirects to the provider's /logged-out page.
func (p *OIDCProvider) AllowPostLogoutRedirect(uris ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.postLogout = append(p.postLogout, uris...)
}

// RewriteIDTokens makes the token endpoint hand out altered ID tokens, for the tests of what
// the relying party must refuse: f changes the claims of each ID token (for example
// claims["nonce"] = "other"), then signer signs them (p itself when signer is nil; another
// provider for a token that its key signed, typically with claims["iss"] = signer.Issuer).
// RewriteIDTokens(nil, nil) goes back to the real ID tokens.
func (p *OIDCProvider) RewriteIDTokens(signer *OIDCProvider, f func(claims map[string]any)) {
	if signer == nil {
		signer = p
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rewrite, p.rewriteSigner = f, signer
}

// SignIDToken signs claims as a JWT with the provider's key (the key its discovery document
// publishes); the claims are taken as they are.
func (p *OIDCProvider) SignIDToken(claims map[string]any) (string, error) {
	key, err := p.storage.SigningKey(context.Background())
	if err != nil {
		return "", err
	}
	signer, err := op.SignerFromKey(key)
	if err != nil {
		return "", err
	}
	return crypto.Sign(claims, signer)
}

// UnverifiedClaims returns the claims of a JWT without checking its signature.
func UnverifiedClaims(jwt string) (map[string]any, error) {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return nil, fmt.Errorf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		return nil, fmt.Errorf("JWT payload: %w", err)
	}
	return claims, nil
}

// rewriteTokenResponses applies RewriteIDTokens to the token endpoint's responses.
func (p *OIDCProvider) rewriteTokenResponses(next http.Handler) http.Handler {
	tokenPath := "/" + strings.TrimPrefix(op.DefaultEndpoints.Token.Relative(), "/")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		f, signer := p.rewrite, p.rewriteSigner
		p.mu.Unlock()
		if f == nil || r.URL.Path != tokenPath {
			next.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		body := rec.Body.Bytes()
		var resp map[string]any
		if rec.Code == http.StatusOK && json.Unmarshal(body, &resp) == nil {
			if raw, ok := resp["id_token"].(string); ok {
				claims, err := UnverifiedClaims(raw)
				if err == nil {
					f(claims)
					var signed string
					if signed, err = signer.SignIDToken(claims); err == nil {
						resp["id_token"] = signed
						body, err = json.Marshal(resp)
					}
				}
				if err != nil {
					http.Error(w, "rewriting the ID token: "+err.Error(), http.StatusInternalServerError)
					return
				}
			}
		}
		maps.Copy(w.Header(), rec.Header())
		w.Header().Del("Content-Length")
		w.WriteHeader(rec.Code)
		_, _ = w.Write(body)
	})
}

// oidcUsers is the example storage's UserStore over our users.
type oidcUsers struct {
	byID  map[string]*storage.User
	extra map[string]OIDCUser // by subject: groups and amr
}

func (u oidcUsers) GetUserByID(id string) *storage.User { return u.byID[id] }

func (u oidcUsers) GetUserByUsername(username string) *storage.User {
	for _, user := range u.byID {
		if user.Username == username {
			return user
		}
	}
	return nil
}

// ExampleClientID names the example's JWT-profile service account, which these tests do not use.
func (u oidcUsers) ExampleClientID() string { return "service" }

// oidcStorage is the example OP's in-memory storage with what the library offers for
// changing it: a client that asserts userinfo claims into the ID token and takes our post
// logout redirects, a "groups" claim added where the ID token's (and userinfo's) claims are
// set, and auth requests whose amr is the user's.
type oidcStorage struct {
	*storage.Storage
	users    oidcUsers
	provider *OIDCProvider
}

// oidcClient is the example web client (confidential, client_secret_basic, dev mode).
type oidcClient struct {
	op.Client
	p *OIDCProvider
}

// IDTokenUserinfoClaimsAssertion puts preferred_username and email (scopes profile and email)
// into the ID token; otherwise the library leaves them to userinfo when it issues an access token.
func (c oidcClient) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c oidcClient) PostLogoutRedirectURIs() []string {
	c.p.mu.Lock()
	defer c.p.mu.Unlock()
	return slices.Clone(c.p.postLogout)
}

func (s *oidcStorage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	c, err := s.Storage.GetClientByClientID(ctx, clientID)
	if err != nil {
		return nil, err
	}
	return oidcClient{Client: c, p: s.provider}, nil
}

// SetUserinfoFromRequest sets the claims of an ID token (op.CanSetUserinfoFromRequest).
func (s *oidcStorage) SetUserinfoFromRequest(ctx context.Context, userinfo *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	if err := s.Storage.SetUserinfoFromRequest(ctx, userinfo, req, scopes); err != nil {
		return err
	}
	s.fixProfile(userinfo)
	s.addGroups(userinfo, req.GetSubject())
	return nil
}

// SetUserinfoFromToken sets the userinfo endpoint's answer.
func (s *oidcStorage) SetUserinfoFromToken(ctx context.Context, userinfo *oidc.UserInfo, tokenID, subject, origin string) error {
	if err := s.Storage.SetUserinfoFromToken(ctx, userinfo, tokenID, subject, origin); err != nil {
		return err
	}
	s.fixProfile(userinfo)
	s.addGroups(userinfo, subject)
	return nil
}

// fixProfile drops the example's "name" made of first and last name, which our users do not have.
func (s *oidcStorage) fixProfile(userinfo *oidc.UserInfo) {
	if strings.TrimSpace(userinfo.Name) == "" {
		userinfo.Name = ""
	}
}

func (s *oidcStorage) addGroups(userinfo *oidc.UserInfo, subject string) {
	if u, ok := s.users.extra[subject]; ok && u.Groups != nil {
		userinfo.AppendClaims("groups", slices.Clone(u.Groups))
	}
}

// oidcAuthRequest is the example auth request with the user's amr. The library takes the ID
// token's amr from the request (op.IDTokenRequest.GetAMR), and a registered claim wins over a
// custom one, so amr cannot be set as a claim like groups.
type oidcAuthRequest struct {
	*storage.AuthRequest
	amr []string
}

func (r *oidcAuthRequest) GetAMR() []string {
	if len(r.amr) > 0 && r.Done() {
		return slices.Clone(r.amr)
	}
	return r.AuthRequest.GetAMR()
}

// AuthRequestByCode is where the token endpoint gets the request that the ID token is made from.
func (s *oidcStorage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	req, err := s.Storage.AuthRequestByCode(ctx, code)
	if err != nil {
		return nil, err
	}
	inner, ok := req.(*storage.AuthRequest)
	if !ok {
		return req, nil
	}
	return &oidcAuthRequest{AuthRequest: inner, amr: s.users.extra[inner.GetSubject()].AMR}, nil
}

// unwrap gives the example storage back its own request type, which it switches on to
// record the client an access token was issued to.
func unwrap(req op.TokenRequest) op.TokenRequest {
	if r, ok := req.(*oidcAuthRequest); ok {
		return r.AuthRequest
	}
	return req
}

func (s *oidcStorage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	return s.Storage.CreateAccessToken(ctx, unwrap(req))
}

// CreateAccessAndRefreshTokens (scope offline_access): a refreshed ID token has the example's amr ["pwd"].
func (s *oidcStorage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, currentRefreshToken string) (string, string, time.Time, error) {
	return s.Storage.CreateAccessAndRefreshTokens(ctx, unwrap(req), currentRefreshToken)
}
