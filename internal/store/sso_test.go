package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// A provider identity links to one user and a user to one identity; a new link replaces the
// old ones; the groups of the last sign-in are kept for re-applying the mapping.
func TestSSOIdentities(t *testing.T) {
	ctx := context.Background()
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		a, b := store.SSOSubject("https://idp.example", "sub-1"), store.SSOSubject("https://idp.example", "sub-2")
		if a == b || a == store.SSOSubject("https://other.example", "sub-1") || len(a) != 64 {
			t.Fatalf("subjects do not tell identities apart: %s %s", a, b)
		}
		if _, err := s.SSOIdentityBySubject(ctx, a); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown identity: %v", err)
		}
		now := time.Now()
		if err := s.LinkSSOIdentity(ctx, store.SSOIdentity{Subject: a, UserID: "u1", Groups: []string{"artists", "staff"}}, now); err != nil {
			t.Fatal(err)
		}
		if err := s.LinkSSOIdentity(ctx, store.SSOIdentity{Subject: b, UserID: "u2"}, now); err != nil {
			t.Fatal(err)
		}
		got, err := s.SSOIdentityBySubject(ctx, a)
		if err != nil || got.UserID != "u1" || !slices.Equal(got.Groups, []string{"artists", "staff"}) {
			t.Fatalf("identity a: %+v %v", got, err)
		}
		// a signs in again with other groups; then u2's identity moves to a new subject.
		if err := s.LinkSSOIdentity(ctx, store.SSOIdentity{Subject: a, UserID: "u1", Groups: []string{"artists"}}, now); err != nil {
			t.Fatal(err)
		}
		// A second identity for u2 (someone renamed at the provider, or a race) is refused.
		c := store.SSOSubject("https://idp.example", "sub-3")
		if err := s.LinkSSOIdentity(ctx, store.SSOIdentity{Subject: c, UserID: "u2", Groups: []string{}}, now); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("a second identity for one user: %v", err)
		}
		if id, err := s.SSOIdentityOfUser(ctx, "u2"); err != nil || id.Subject != b {
			t.Errorf("u2's identity: %+v %v", id, err)
		}
		if _, err := s.SSOIdentityOfUser(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("a user without an identity: %v", err)
		}
		all, err := s.SSOIdentities(ctx)
		if err != nil || len(all) != 2 {
			t.Fatalf("identities: %+v %v", all, err)
		}
		for _, id := range all {
			switch id.Subject {
			case a:
				if id.UserID != "u1" || !slices.Equal(id.Groups, []string{"artists"}) {
					t.Errorf("a: %+v", id)
				}
			case b:
				if id.UserID != "u2" || len(id.Groups) != 0 {
					t.Errorf("b: %+v", id)
				}
			default:
				t.Errorf("an unknown link: %+v", id)
			}
		}
	})
}
