package store_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// BenchmarkLookups measures the two lookups on the login and token paths on each backend,
// next to a trivial round trip (Ping) on the same pool as the baseline: the ratio says what
// the lookup costs beyond the connection itself. Run with `make bench`.
func BenchmarkLookups(b *testing.B) {
	for _, backend := range testenv.Backends {
		s := testenv.Open(b, backend)
		for i := range 1000 {
			u := store.User{Username: fmt.Sprintf("user%04d", i), Role: roles.User, PasswordHash: "$2b$12$x"}
			if err := s.CreateUser(ctx, &u); err != nil {
				b.Fatal(err)
			}
			h := sha256.Sum256([]byte(u.Username))
			if err := s.CreateAPIToken(ctx, &store.APIToken{TokenHash: hex.EncodeToString(h[:]), UserID: u.ID}); err != nil {
				b.Fatal(err)
			}
		}
		h := sha256.Sum256([]byte("user0500"))
		hash := hex.EncodeToString(h[:])
		b.Run(string(backend)+"/baseline-ping", func(b *testing.B) {
			for b.Loop() {
				if err := s.Ping(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(backend)+"/user-by-name", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.UserByName(ctx, "user0500"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(string(backend)+"/token-by-hash", func(b *testing.B) {
			for b.Loop() {
				if _, err := s.APITokenByHash(ctx, hash); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
