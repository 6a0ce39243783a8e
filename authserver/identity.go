package authserver

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// identity is who made a request, as established by the one authenticator.
type identity struct {
	user      store.User
	role      store.Role
	jti       string // set for a session
	tokenID   string // set for an API token
	viaCookie bool   // the credential came from the cookie: unsafe methods need a same-origin check
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
// Bearer, the jwt_token cookie, then ?token= / ?access_token= (for WebSocket clients).
func credential(r *http.Request) (token string, viaCookie bool) {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t), false
		}
	}
	if c, err := r.Cookie(cookieName); err == nil && c.Value != "" {
		return c.Value, true
	}
	q := r.URL.Query()
	for _, k := range []string{"token", "access_token"} {
		if v := q.Get(k); v != "" {
			return v, false
		}
	}
	return "", false
}

// authenticate returns the identity for a credential, or nil. It needs no database round trip
// for a session or token this process has seen, and never computes a password hash.
func (s *Server) authenticate(ctx context.Context, token string, now time.Time) *identity {
	if token == "" || len(token) > 4096 {
		return nil
	}
	snap := s.cache.get()
	var id identity
	if strings.HasPrefix(token, TokenPrefix) || isLegacyToken(token) {
		t, ok := snap.tokens[hashToken(token)]
		if !ok || (!t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now)) {
			return nil
		}
		id.tokenID = t.ID
		id.user = snap.usersByID[t.UserID]
		s.cache.touchToken(t.ID, now)
	} else {
		claims, err := s.signer.verify(token, now)
		if err != nil {
			return nil
		}
		sess, err := s.cache.session(ctx, claims.ID)
		if err != nil || sess.revoked.Load() || sess.userID != claims.Subject {
			return nil
		}
		if !sess.expiresAt.IsZero() && !sess.expiresAt.After(now) {
			return nil
		}
		if idle := s.idleTimeout; idle > 0 && now.Sub(time.UnixMilli(sess.lastUsed.Load())) > idle {
			s.cache.refreshLastUsed(ctx, claims.ID, sess)
			if now.Sub(time.UnixMilli(sess.lastUsed.Load())) > idle {
				return nil
			}
		}
		if now.Sub(time.UnixMilli(sess.lastUsed.Load())) > time.Second {
			sess.lastUsed.Store(now.UnixMilli())
			s.cache.touchSession(claims.ID, now)
		}
		id.jti = claims.ID
		id.user = snap.usersByID[claims.Subject]
		if claims.IssuedAt != nil {
			id.issuedAt = claims.IssuedAt.Time
		}
	}
	if id.user.ID == "" || id.user.Disabled {
		return nil
	}
	id.role = snap.role(id.user.Role) // an unknown role grants nothing; the owner still has every flag
	return &id
}
