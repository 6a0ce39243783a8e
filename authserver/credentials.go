package authserver

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TokenPrefix starts every API token, so that secret scanners recognise a leaked one.
const TokenPrefix = "mssl_"

// newAPIToken returns a random API token and the SHA-256 (hex) that is stored.
func newAPIToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, hashToken(token)
}

// isLegacyToken recognises an API token of the original MSS-Login (32 random bytes,
// base64url, no prefix), imported by `mss-login admin import` with its SHA-256: it has no dots,
// which every JWT has.
func isLegacyToken(token string) bool {
	if len(token) != 43 {
		return false
	}
	for _, c := range token {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

func randomID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// sessionClaims are the claims of a session JWT: sub is the user id, jti the session row.
type sessionClaims struct {
	Username string `json:"username,omitempty"`
	jwt.RegisteredClaims
}

// signer issues and verifies session JWTs (HS256) with a key derived from SECRET_KEY.
// Verified tokens are remembered (by their exact text) so that a session's every request does
// not repeat the signature check and JSON decoding; revocation is checked separately each time.
type signer struct {
	key      []byte
	verified *sync.Map // token → *sessionClaims
	size     *atomic.Int64
}

func newSigner(key []byte) signer {
	return signer{key: key, verified: &sync.Map{}, size: &atomic.Int64{}}
}

const maxVerified = 50000

func (s signer) issue(userID, username, jti string, now, expires time.Time) (string, error) {
	c := sessionClaims{Username: username, RegisteredClaims: jwt.RegisteredClaims{
		Subject: userID, ID: jti, IssuedAt: jwt.NewNumericDate(now), Issuer: "mss-login",
	}}
	if !expires.IsZero() {
		c.ExpiresAt = jwt.NewNumericDate(expires)
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, c).SignedString(s.key)
}

var errBadToken = errors.New("invalid token")

// verify checks signature, algorithm, issuer and expiry; it does not consult the sessions.
func (s signer) verify(token string, now time.Time) (*sessionClaims, error) {
	if v, ok := s.verified.Load(token); ok {
		c := v.(*sessionClaims)
		if c.ExpiresAt != nil && !c.ExpiresAt.After(now) {
			return nil, errBadToken
		}
		return c, nil
	}
	if strings.Count(token, ".") != 2 {
		return nil, errBadToken
	}
	c := &sessionClaims{}
	_, err := jwt.ParseWithClaims(token, c, func(*jwt.Token) (any, error) { return s.key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithIssuer("mss-login"), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuedAt())
	if err != nil || c.Subject == "" || c.ID == "" {
		return nil, errBadToken
	}
	if s.size.Add(1) > maxVerified {
		s.verified.Clear() // bounded: start over rather than track age
		s.size.Store(1)
	}
	s.verified.Store(token, c)
	return c, nil
}
