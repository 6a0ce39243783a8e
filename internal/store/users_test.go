package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func TestUserByUsernameKeyAndOwner(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		if _, err := s.Owner(ctx); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Owner on an empty database: %v, want ErrNotFound", err)
		}
		u := &store.User{Username: "Alice", Role: "user", Owner: true}
		if err := s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"alice", "ALICE", "Alice"} {
			got, err := s.UserByUsernameKey(ctx, name)
			if err != nil || got.ID != u.ID {
				t.Fatalf("UserByUsernameKey(%q) = %v, %v; want %s", name, got.ID, err, u.ID)
			}
		}
		if _, err := s.UserByUsernameKey(ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v, want ErrNotFound", err)
		}
		o, err := s.Owner(ctx)
		if err != nil || o.ID != u.ID {
			t.Fatalf("Owner = %v, %v; want %s", o.ID, err, u.ID)
		}
	})
}
