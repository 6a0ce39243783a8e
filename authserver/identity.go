package authserver

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// identity is who made a request, as established by the one authenticator.
type identity struct {
	user      store.User
	role      store.Role
	jti       string       // set for a session
	sess      *session     // the cached session row of jti
	tokenID   string       // set for an API token
	token     *cachedToken // the cached row of tokenID
	viaCookie bool         // the credential came from the cookie: unsafe methods need a same-origin check
	issuedAt  time.Time
}

// can reports whether the identity holds flag. The owner holds every flag. A permission a role
// does not state is not granted (built-in roles state every one); a settings_* extension flag
// blocks only when explicitly false (for guests: unless explicitly true), as in the original.
func (id *identity) can(flag string) bool {
	if id.user.Owner {
		return true
	}
	if roles.IsUIFlag(flag) {
		v, set := id.role.UI[flag]
		if !set {
			return id.role.Name != roles.Guest
		}
		return v
	}
	return id.role.Permissions[flag]
}

func (id *identity) isAdmin() bool {
	return id.user.Owner || id.role.Name == roles.Admin
}

// credential finds the token a request carries, in the original's order: Authorization
// Bearer, the jwt_token cookie (from every Cookie line), then ?token= / ?access_token= (for
// WebSocket clients; keys in decoded form).
func credential(h http.Header, cookies []*http.Cookie, query url.Values) (token string, viaCookie bool) {
	if a := h.Get("Authorization"); a != "" {
		if t, ok := strings.CutPrefix(a, "Bearer "); ok {
			return strings.TrimSpace(t), false
		}
	}
	for _, c := range cookies {
		if c.Name == cookieName && c.Value != "" {
			return c.Value, true
		}
	}
	for _, k := range tokenParams {
		if v := query.Get(k); v != "" {
			return v, false
		}
	}
	return "", false
}

// tokenParams are the query keys that carry a credential.
var tokenParams = []string{"token", "access_token"}

// authenticate returns the identity a credential names, not yet checked for validity (decide
// does that, the same way for every caller), or nil. It needs no database round trip for a
// session or token this process has seen, and never computes a password hash.
func (s *Server) authenticate(ctx context.Context, token string, now time.Time) (identity, bool) {
	if token == "" || len(token) > 4096 {
		return identity{}, false
	}
	if strings.HasPrefix(token, TokenPrefix) || isLegacyToken(token) {
		t, ok := s.cache.get().tokens[sha256.Sum256([]byte(token))]
		if !ok {
			return identity{}, false
		}
		return identity{tokenID: t.ID, token: t, user: store.User{ID: t.UserID}}, true
	}
	claims, err := s.signer.verify(token, now)
	if err != nil {
		return identity{}, false
	}
	sess, err := s.cache.session(ctx, claims.ID)
	if err != nil || sess.userID != claims.Subject {
		return identity{}, false
	}
	if _, known := s.cache.get().usersByID[claims.Subject]; !known {
		// A session of a user created on another replica since the last refresh: load it now
		// rather than refuse the user's first request here.
		s.cache.refreshSoon(ctx)
	}
	if sess.idle(now, s.idleTimeout) {
		s.cache.refreshLastUsed(ctx, claims.ID, sess) // another replica may have seen it since
	}
	id := identity{jti: claims.ID, sess: sess, user: store.User{ID: claims.Subject}}
	if claims.IssuedAt != nil {
		id.issuedAt = claims.IssuedAt.Time
	}
	return id, true
}

// touch records that an allowed request used the identity's credential.
func (s *Server) touch(id *identity, now time.Time) {
	switch {
	case id.token != nil && now.Sub(time.UnixMilli(id.token.lastUsed.Load())) > time.Second:
		id.token.lastUsed.Store(now.UnixMilli())
		s.cache.touchToken(id.tokenID, now)
	case id.sess != nil && now.Sub(time.UnixMilli(id.sess.lastUsed.Load())) > time.Second:
		id.sess.lastUsed.Store(now.UnixMilli())
		s.cache.touchSession(id.jti, now)
	}
}
