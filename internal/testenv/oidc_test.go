package testenv

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The relying party's redirect URI: never served, the client stops at the redirect to it.
const oidcTestRedirect = "http://127.0.0.1:1/oidc/callback"

var errAtRedirect = errors.New("at the redirect URI")

// oidcRP is a relying party of one provider: go-oidc discovery and verifier, x/oauth2 config.
type oidcRP struct {
	p        *OIDCProvider
	verifier *oidc.IDTokenVerifier
	conf     *oauth2.Config
}

func newOIDCRP(t *testing.T, ctx context.Context, p *OIDCProvider) *oidcRP {
	t.Helper()
	provider, err := oidc.NewProvider(ctx, p.Issuer)
	if err != nil {
		t.Fatalf("discovery of %s: %v", p.Issuer, err)
	}
	ep := provider.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInHeader // client_secret_basic
	return &oidcRP{
		p:        p,
		verifier: provider.Verifier(&oidc.Config{ClientID: p.ClientID}),
		conf: &oauth2.Config{
			ClientID:     p.ClientID,
			ClientSecret: p.ClientSecret,
			Endpoint:     ep,
			RedirectURL:  oidcTestRedirect,
			Scopes:       []string{oidc.ScopeOpenID, "profile", "email", "groups"},
		},
	}
}

// signIn runs the authorization code flow with PKCE the way a browser would (cookie jar,
// login form) and returns the raw ID token, or the login page's body when the password is
// refused.
func (rp *oidcRP) signIn(t *testing.T, ctx context.Context, username, password, nonce string) (idToken, refusedPage string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	var callback *url.URL
	client := &http.Client{
		Jar:     jar,
		Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), oidcTestRedirect) {
				callback = req.URL
				return errAtRedirect
			}
			return nil
		},
	}
	verifier := oauth2.GenerateVerifier()
	state := randomHex(8)
	authURL := rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce))

	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatalf("authorization request: %v", err)
	}
	page := readBody(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/login/username") {
		t.Fatalf("authorization request ended at %s (%d), not the login page: %s", resp.Request.URL, resp.StatusCode, page)
	}
	for _, want := range []string{`id="username"`, `id="password"`, `type="submit"`, `action="/login/username"`} {
		if !strings.Contains(page, want) {
			t.Fatalf("login page has no %s: %s", want, page)
		}
	}
	m := regexp.MustCompile(`name="id" value="([^"]+)"`).FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("login page has no auth request id: %s", page)
	}
	form := url.Values{"id": {m[1]}, "username": {username}, "password": {password}}
	resp, err = client.PostForm(rp.p.Issuer+"/login/username", form)
	if callback == nil {
		if err != nil {
			t.Fatalf("login: %v", err)
		}
		return "", readBody(t, resp)
	}
	if !errors.Is(err, errAtRedirect) {
		t.Fatalf("login: %v", err)
	}
	if got := callback.Query().Get("state"); got != state {
		t.Fatalf("state at the redirect URI %q, want %q", got, state)
	}
	code := callback.Query().Get("code")
	if code == "" {
		t.Fatalf("no code at the redirect URI: %s", callback)
	}
	tok, err := rp.conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("token response has no id_token")
	}
	return raw, ""
}

func readBody(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

type oidcTestClaims struct {
	Nonce             string   `json:"nonce"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	Groups            []string `json:"groups"`
	AMR               []string `json:"amr"`
}

func TestOIDCProvider(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	alice := OIDCUser{Username: "alice", Password: "alice-pw", Email: "alice@example.test",
		Groups: []string{"comfy-admins", "comfy-users"}, AMR: []string{"pwd", "otp"}}
	bob := OIDCUser{Username: "bob", Password: "bob-pw", Email: "bob@example.test", Groups: []string{"other"}}
	a := StartOIDCProvider(t, []string{oidcTestRedirect}, alice, bob)
	b := StartOIDCProvider(t, []string{oidcTestRedirect}, alice)
	if a.Issuer == b.Issuer || !strings.HasPrefix(a.Issuer, "http://127.0.0.1:") {
		t.Fatalf("issuers %s and %s", a.Issuer, b.Issuer)
	}
	rpA, rpB := newOIDCRP(t, ctx, a), newOIDCRP(t, ctx, b)

	var aliceToken string
	t.Run("sign in", func(t *testing.T) {
		nonce := randomHex(8)
		aliceToken, _ = rpA.signIn(t, ctx, "alice", "alice-pw", nonce)
		idt, err := rpA.verifier.Verify(ctx, aliceToken)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		var c oidcTestClaims
		if err := idt.Claims(&c); err != nil {
			t.Fatal(err)
		}
		all, _ := UnverifiedClaims(aliceToken)
		t.Logf("ID token claims: %v", all)
		if idt.Issuer != a.Issuer || idt.Subject != "sub-alice" || idt.Nonce != nonce || c.Nonce != nonce {
			t.Errorf("iss %q sub %q nonce %q, want %q sub-alice %q", idt.Issuer, idt.Subject, idt.Nonce, a.Issuer, nonce)
		}
		if c.PreferredUsername != "alice" || c.Email != alice.Email {
			t.Errorf("preferred_username %q email %q", c.PreferredUsername, c.Email)
		}
		if !slices.Equal(c.Groups, alice.Groups) || !slices.Equal(c.AMR, alice.AMR) {
			t.Errorf("groups %q amr %q, want %q %q", c.Groups, c.AMR, alice.Groups, alice.AMR)
		}
	})

	t.Run("default amr and other groups", func(t *testing.T) {
		raw, _ := rpA.signIn(t, ctx, "bob", "bob-pw", "n-bob")
		idt, err := rpA.verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		var c oidcTestClaims
		_ = idt.Claims(&c)
		if !slices.Equal(c.Groups, []string{"other"}) || !slices.Equal(c.AMR, []string{"pwd"}) || c.PreferredUsername != "bob" {
			t.Errorf("bob: groups %q amr %q preferred_username %q", c.Groups, c.AMR, c.PreferredUsername)
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		raw, page := rpA.signIn(t, ctx, "alice", "wrong", "n")
		if raw != "" || !strings.Contains(page, "username or password wrong") {
			t.Errorf("wrong password: token %q, page %s", raw, page)
		}
	})

	t.Run("ID token from another issuer", func(t *testing.T) {
		raw, _ := rpB.signIn(t, ctx, "alice", "alice-pw", "n-b")
		if _, err := rpB.verifier.Verify(ctx, raw); err != nil {
			t.Fatalf("B's token fails B's verifier: %v", err)
		}
		if _, err := rpA.verifier.Verify(ctx, raw); err == nil {
			t.Error("A's verifier took an ID token of B")
		}
		// B's key signing a token that claims to be from A (A's client id as audience).
		claims, err := UnverifiedClaims(aliceToken)
		if err != nil {
			t.Fatal(err)
		}
		forged, err := b.SignIDToken(claims)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rpA.verifier.Verify(ctx, forged); err == nil {
			t.Error("A's verifier took a token signed by B's key")
		}
	})

	t.Run("rewritten ID tokens", func(t *testing.T) {
		a.RewriteIDTokens(nil, func(c map[string]any) { c["nonce"] = "tampered" })
		raw, _ := rpA.signIn(t, ctx, "alice", "alice-pw", "n-real")
		idt, err := rpA.verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("a token re-signed by A fails A's verifier: %v", err)
		}
		if idt.Nonce != "tampered" {
			t.Errorf("nonce %q, want tampered", idt.Nonce)
		}

		a.RewriteIDTokens(b, func(c map[string]any) { c["iss"] = b.Issuer })
		raw, _ = rpA.signIn(t, ctx, "alice", "alice-pw", "n-real")
		if _, err := rpA.verifier.Verify(ctx, raw); err == nil {
			t.Error("A's verifier took B's token from A's token endpoint")
		}
		if c, _ := UnverifiedClaims(raw); c["iss"] != b.Issuer || c["aud"] == nil {
			t.Errorf("rewritten claims %v", c)
		}
		a.RewriteIDTokens(nil, nil)
		raw, _ = rpA.signIn(t, ctx, "alice", "alice-pw", "n-real")
		if idt, err := rpA.verifier.Verify(ctx, raw); err != nil || idt.Nonce != "n-real" {
			t.Errorf("after RewriteIDTokens(nil, nil): %v", err)
		}
	})

	t.Run("logout", func(t *testing.T) {
		const after = "http://127.0.0.1:1/signed-out"
		a.AllowPostLogoutRedirect(after)
		var endSession struct {
			URL string `json:"end_session_endpoint"`
		}
		provider, err := oidc.NewProvider(ctx, a.Issuer)
		if err != nil {
			t.Fatal(err)
		}
		if err := provider.Claims(&endSession); err != nil || endSession.URL == "" {
			t.Fatalf("no end_session_endpoint: %v", err)
		}
		noFollow := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}}
		q := url.Values{"id_token_hint": {aliceToken}, "post_logout_redirect_uri": {after}, "state": {"s1"}}
		resp, err := noFollow.Get(endSession.URL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body := readBody(t, resp)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusFound || loc != after+"?state=s1" {
			t.Errorf("end session: %d Location %q: %s", resp.StatusCode, loc, body)
		}
		q.Set("post_logout_redirect_uri", "http://127.0.0.1:1/elsewhere")
		resp, err = noFollow.Get(endSession.URL + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		body = readBody(t, resp)
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, "http://127.0.0.1:1/elsewhere") {
			t.Errorf("end session redirected to an unregistered URI: %d %q %s", resp.StatusCode, loc, body)
		}
	})
}
