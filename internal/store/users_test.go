package store_test

import (
	"errors"
	"testing"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func TestUserByUsernameKeyAndOwner(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
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

// The ComfyUser apply: the row's fields, the password and the read-back are one transaction.
func TestUpdateUserAndPassword(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		owner := mustUser(t, s, "olga", true)
		u := mustUser(t, s, "paul", false)
		sess := store.Session{JTI: "jti-paul", UserID: u.ID}
		if err := s.CreateSession(ctx, &sess); err != nil {
			t.Fatal(err)
		}
		moved := func(before map[string]int64, topic string) int64 {
			after, err := s.Versions(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return after[topic] - before[topic]
		}
		matchesStored := func(got store.User) {
			t.Helper()
			stored, err := s.UserByID(ctx, got.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got != stored {
				t.Fatalf("answer %+v, stored %+v", got, stored)
			}
		}

		// Fields and password: one commit bumps each counter once.
		before, _ := s.Versions(ctx)
		fields := u
		fields.Role, fields.OwnerRef = roles.Power, "ComfyUser/ns/paul"
		got, err := s.UpdateUserAndPassword(ctx, u.ID, &fields, "hash-1")
		if err != nil {
			t.Fatal(err)
		}
		if got.Role != roles.Power || got.OwnerRef != "ComfyUser/ns/paul" || got.PasswordHash != "hash-1" ||
			got.PasswordChangedAt.Before(u.PasswordChangedAt) || got.PasswordChangedAt.IsZero() {
			t.Fatalf("after fields and password: %+v", got)
		}
		matchesStored(got)
		if n, m := moved(before, store.TopicUsers), moved(before, store.TopicSessions); n != 1 || m != 1 {
			t.Fatalf("users counter moved %d, sessions %d; want one transaction (1, 1)", n, m)
		}

		// Password only: the fields stay, the sessions counter does not move.
		before, _ = s.Versions(ctx)
		got, err = s.UpdateUserAndPassword(ctx, u.ID, nil, "hash-2")
		if err != nil || got.PasswordHash != "hash-2" || got.Role != roles.Power {
			t.Fatalf("password only: %+v, %v", got, err)
		}
		matchesStored(got)
		if n, m := moved(before, store.TopicUsers), moved(before, store.TopicSessions); n != 1 || m != 0 {
			t.Fatalf("password only: users counter moved %d, sessions %d; want 1, 0", n, m)
		}

		// Fields only: the password and its time stay; disabling revokes the sessions.
		fields = got
		fields.Disabled = true
		again, err := s.UpdateUserAndPassword(ctx, u.ID, &fields, "")
		if err != nil || !again.Disabled || again.PasswordHash != "hash-2" || !again.PasswordChangedAt.Equal(got.PasswordChangedAt) {
			t.Fatalf("fields only: %+v, %v", again, err)
		}
		matchesStored(again)
		if x, _ := s.Session(ctx, "jti-paul"); x.RevokedAt.IsZero() {
			t.Fatal("disabling through UpdateUserAndPassword kept the session")
		}

		// A refused write changes nothing: a second owner sets no password either.
		before, _ = s.Versions(ctx)
		fields = again
		fields.Owner = true
		if _, err := s.UpdateUserAndPassword(ctx, u.ID, &fields, "hash-3"); !errors.Is(err, store.ErrOwnerTaken) {
			t.Fatalf("second owner: %v, want ErrOwnerTaken", err)
		}
		matchesStored(again)
		if n := moved(before, store.TopicUsers); n != 0 {
			t.Fatalf("a rolled-back write moved the users counter by %d", n)
		}
		if o, _ := s.Owner(ctx); o.ID != owner.ID {
			t.Fatalf("owner is %s, want %s", o.Username, owner.Username)
		}

		if _, err := s.UpdateUserAndPassword(ctx, "no-such-id", nil, "hash-4"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("unknown user: %v, want ErrNotFound", err)
		}
		if _, err := s.UpdateUserAndPassword(ctx, owner.ID, &again, "hash-4"); err == nil {
			t.Fatal("a row of another user was accepted")
		}
		matchesStored(owner)
	})
}
