package controllers_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

func user(name, username string, mutate ...func(*authv1alpha1.ComfyUser)) *authv1alpha1.ComfyUser {
	u := &authv1alpha1.ComfyUser{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: authv1alpha1.ComfyUserSpec{
			Username: username, Role: "user",
			PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: name + "-pw"},
		},
	}
	for _, m := range mutate {
		m(u)
	}
	return u
}

func verify(t testing.TB, hash, pw string) bool {
	t.Helper()
	res, err := password.Verify(hash, pw)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return res.OK
}

// Create → Ready → row; role change, disable, Secret change → row within seconds; delete
// under each deletion policy.
func TestComfyUserLifecycle(t *testing.T) {
	for _, b := range backends(store.SQLite, store.PostgreSQL, store.MySQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			h.secret("alice-pw", map[string]string{"password": "first-Password-1"})
			h.create(user("alice", "alice"))
			var u authv1alpha1.ComfyUser
			h.ready("alice", &u)
			row, err := h.userRow("alice")
			if err != nil {
				t.Fatal(err)
			}
			if row.Role != "user" || row.Disabled || row.Owner || row.OwnerRef != "ComfyUser/"+h.ns+"/alice" || row.ID != u.Status.UserID {
				t.Fatalf("row = %+v, status %+v", row, u.Status)
			}
			if !verify(t, row.PasswordHash, "first-Password-1") {
				t.Fatal("the stored hash does not verify the Secret's password")
			}
			if u.Status.PasswordSecretResourceVersion == "" || u.Status.PasswordChangedAt == nil {
				t.Fatalf("status lacks the Secret version: %+v", u.Status)
			}
			firstHash := row.PasswordHash

			// Role change.
			h.update("alice", &u, func() { u.Spec.Role = "power" })
			h.eventually(5*time.Second, "role applied", func() error {
				r, _ := h.userRow("alice")
				if r.Role != "power" {
					return fmt.Errorf("role %q", r.Role)
				}
				return nil
			})
			// Disable: login refused and sessions revoked.
			sess := &store.Session{JTI: "jti-alice", UserID: row.ID, CreatedAt: time.Now(), LastUsedAt: time.Now()}
			if err := h.store.CreateSession(h.ctx, sess); err != nil {
				t.Fatal(err)
			}
			h.update("alice", &u, func() { u.Spec.Disabled = true })
			h.eventually(5*time.Second, "disabled applied", func() error {
				r, _ := h.userRow("alice")
				s, err := h.store.Session(h.ctx, "jti-alice")
				if err != nil {
					return err
				}
				if !r.Disabled || s.RevokedAt.IsZero() {
					return fmt.Errorf("disabled %v, session revoked at %v", r.Disabled, s.RevokedAt)
				}
				return nil
			})
			// Secret change: the new password applies within seconds, hashed once.
			var sec corev1.Secret
			h.update("alice-pw", &sec, func() { sec.Data = map[string][]byte{"password": []byte("second-Password-2")} })
			start := time.Now()
			h.eventually(5*time.Second, "new password applied", func() error {
				r, _ := h.userRow("alice")
				if r.PasswordHash == firstHash {
					return errors.New("old hash still stored")
				}
				return nil
			})
			t.Logf("Secret change applied in %s", time.Since(start).Round(time.Millisecond))
			row, _ = h.userRow("alice")
			if !verify(t, row.PasswordHash, "second-Password-2") {
				t.Fatal("the new hash does not verify the new password")
			}
			h.eventually(5*time.Second, "status records the Secret version", func() error {
				if err := h.get("alice", &u); err != nil {
					return err
				}
				if err := h.get("alice-pw", &sec); err != nil {
					return err
				}
				if u.Status.PasswordSecretResourceVersion != sec.ResourceVersion {
					return fmt.Errorf("status has version %s, Secret is at %s", u.Status.PasswordSecretResourceVersion, sec.ResourceVersion)
				}
				return nil
			})
			// Hashed once per Secret version: resyncs (every 2 s here) leave the hash alone.
			time.Sleep(5 * time.Second)
			again, _ := h.userRow("alice")
			if again.PasswordHash != row.PasswordHash || !again.PasswordChangedAt.Equal(row.PasswordChangedAt) {
				t.Fatal("the password was rewritten without a new Secret version")
			}
			// No password, hash or Secret value in status or Events.
			h.get("alice", &u)
			blob := fmt.Sprintf("%+v %v", u.Status, h.events("alice"))
			for _, secret := range []string{"first-Password-1", "second-Password-2", row.PasswordHash, firstHash} {
				if strings.Contains(blob, secret) {
					t.Fatal("a password or hash leaked into status or Events")
				}
			}

			// Delete under each policy.
			for _, p := range []authv1alpha1.DeletionPolicy{authv1alpha1.DeletionDisable, authv1alpha1.DeletionDelete, authv1alpha1.DeletionOrphan} {
				name := "del-" + strings.ToLower(string(p))
				h.secret(name+"-pw", map[string]string{"password": "pw-" + name})
				h.create(user(name, "del_"+string(p), func(u *authv1alpha1.ComfyUser) { u.Spec.DeletionPolicy = p }))
				var du authv1alpha1.ComfyUser
				h.ready(name, &du)
				r, _ := h.userRow("del_" + string(p))
				if err := h.store.CreateSession(h.ctx, &store.Session{JTI: "jti-" + name, UserID: r.ID, CreatedAt: time.Now(), LastUsedAt: time.Now()}); err != nil {
					t.Fatal(err)
				}
				h.delete(name, &du)
				h.gone(name, &du, 10*time.Second)
				r2, err := h.userRow("del_" + string(p))
				switch p {
				case authv1alpha1.DeletionDisable:
					s, _ := h.store.Session(h.ctx, "jti-"+name)
					if err != nil || !r2.Disabled || s.RevokedAt.IsZero() {
						t.Fatalf("Disable: row %+v (%v), session revoked at %v", r2, err, s.RevokedAt)
					}
				case authv1alpha1.DeletionDelete:
					if !errors.Is(err, store.ErrNotFound) {
						t.Fatalf("Delete: row still there: %+v %v", r2, err)
					}
				case authv1alpha1.DeletionOrphan:
					if err != nil || r2.Disabled || r2.OwnerRef != "" || r2.PasswordHash != r.PasswordHash {
						t.Fatalf("Orphan: row %+v (%v)", r2, err)
					}
				}
			}
		})
	}
}

// A missing Secret, a missing role, a conflicting username and a second owner: the status
// explains and the database is unchanged.
func TestComfyUserRefusals(t *testing.T) {
	for _, b := range backends(store.SQLite, store.PostgreSQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			var u authv1alpha1.ComfyUser

			// Missing Secret: no row; the Secret appears → created.
			h.create(user("nosecret", "nosecret"))
			c := h.notReady("nosecret", &u, "SecretNotFound")
			if !strings.Contains(c.Message, "nosecret-pw") {
				t.Fatalf("message does not name the Secret: %s", c.Message)
			}
			if _, err := h.userRow("nosecret"); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("row created without a password: %v", err)
			}
			h.secret("nosecret-pw", map[string]string{"password": "now-there-1"})
			h.ready("nosecret", &u)

			// A Secret that disappears never clears the stored password.
			before, _ := h.userRow("nosecret")
			var sec corev1.Secret
			h.delete("nosecret-pw", &sec)
			h.notReady("nosecret", &u, "SecretNotFound")
			after, _ := h.userRow("nosecret")
			if after.PasswordHash != before.PasswordHash || after.PasswordHash == "" {
				t.Fatal("a missing Secret changed the stored password")
			}
			// A key that is missing: same.
			h.secret("nosecret-pw", map[string]string{"other": "x"})
			h.notReady("nosecret", &u, "KeyNotFound")
			if after, _ = h.userRow("nosecret"); after.PasswordHash != before.PasswordHash {
				t.Fatal("a missing key changed the stored password")
			}

			// Missing role: reported, not guessed; the ComfyRole appears → applied.
			h.secret("artist-pw", map[string]string{"password": "artist-pw-1"})
			h.create(user("artist", "artist", func(u *authv1alpha1.ComfyUser) { u.Spec.Role = "artists" }))
			c = h.notReady("artist", &u, "RoleNotFound")
			if !strings.Contains(c.Message, "artists") {
				t.Fatalf("message does not name the role: %s", c.Message)
			}
			if _, err := h.userRow("artist"); !errors.Is(err, store.ErrNotFound) {
				t.Fatal("row created with a missing role")
			}
			h.create(&authv1alpha1.ComfyRole{ObjectMeta: metav1.ObjectMeta{Name: "artists"}, Spec: authv1alpha1.ComfyRoleSpec{Permissions: map[string]bool{"can_run": true}}})
			h.ready("artist", &u)

			// Conflicting username: the older resource wins, the younger reports it.
			h.secret("older-pw", map[string]string{"password": "older-pw-1"})
			h.secret("younger-pw", map[string]string{"password": "younger-pw-1"})
			h.create(user("older", "bob", func(u *authv1alpha1.ComfyUser) { u.Spec.DeletionPolicy = authv1alpha1.DeletionDelete }))
			h.ready("older", &u)
			time.Sleep(1100 * time.Millisecond) // creation timestamps have one-second precision
			h.create(user("younger", "BOB", func(u *authv1alpha1.ComfyUser) { u.Spec.Role = "power" }))
			c = h.notReady("younger", &u, "OwnedByOther")
			if !strings.Contains(c.Message, "ComfyUser/"+h.ns+"/older") {
				t.Fatalf("conflict message does not name the winner: %s", c.Message)
			}
			if r, _ := h.userRow("bob"); r.Role != "user" || r.OwnerRef != "ComfyUser/"+h.ns+"/older" {
				t.Fatalf("the younger resource changed the row: %+v", r)
			}
			// The winner goes (policy Delete) → the younger one takes the username.
			var older authv1alpha1.ComfyUser
			h.delete("older", &older)
			h.ready("younger", &u)
			if r, _ := h.userRow("BOB"); r.Role != "power" || r.Username != "BOB" {
				t.Fatalf("after the winner left: %+v", r)
			}

			// A second owner is refused; the database keeps one owner.
			h.secret("own1-pw", map[string]string{"password": "own1-pw-1"})
			h.secret("own2-pw", map[string]string{"password": "own2-pw-1"})
			h.create(user("own1", "own1", func(u *authv1alpha1.ComfyUser) { u.Spec.Owner = true }))
			h.ready("own1", &u)
			h.create(user("own2", "own2", func(u *authv1alpha1.ComfyUser) { u.Spec.Owner = true }))
			c = h.notReady("own2", &u, "OwnerTaken")
			if !strings.Contains(c.Message, "own1") {
				t.Fatalf("owner message does not name the owner: %s", c.Message)
			}
			if _, err := h.userRow("own2"); !errors.Is(err, store.ErrNotFound) {
				t.Fatal("a second owner was written")
			}

			// An existing user not owned by a resource is not taken over without adopt.
			if err := h.store.CreateUser(h.ctx, &store.User{Username: "carol", Role: "admin", PasswordHash: "$2b$12$abcdefghijklmnopqrstuu5Xz1R8Tn3cB/3b9N9xG0yq2s7b9f1cS"}); err != nil {
				t.Fatal(err)
			}
			h.secret("carol-pw", map[string]string{"password": "carol-pw-1"})
			h.create(user("carol", "carol"))
			h.notReady("carol", &u, "NotAdopted")
			if r, _ := h.userRow("carol"); r.Role != "admin" || r.OwnerRef != "" {
				t.Fatalf("an unowned user was taken over without adopt: %+v", r)
			}
			h.update("carol", &u, func() { u.Spec.Adopt = true })
			h.ready("carol", &u)
			if r, _ := h.userRow("carol"); r.Role != "user" || r.OwnerRef != "ComfyUser/"+h.ns+"/carol" || !verify(t, r.PasswordHash, "carol-pw-1") {
				t.Fatalf("adoption did not apply the resource: %+v", r)
			}
			h.waitEvent("carol", "Adopted")
		})
	}
}

// A bcrypt or argon2id value in the Secret is stored as is.
func TestComfyUserPreHashedPassword(t *testing.T) {
	h := newHarness(t, store.SQLite)
	hash, err := password.Hash("pre-hashed-1")
	if err != nil {
		t.Fatal(err)
	}
	h.secret("hashed-pw", map[string]string{"password": hash + "\n"})
	h.create(user("hashed", "hashed"))
	var u authv1alpha1.ComfyUser
	h.ready("hashed", &u)
	if r, _ := h.userRow("hashed"); r.PasswordHash != hash {
		t.Fatalf("stored %q, want the Secret's hash as is", r.PasswordHash)
	}
}

func verifyResult(hash, pw string) (bool, error) {
	res, err := password.Verify(hash, pw)
	return res.OK, err
}

// A Secret holding a bcrypt hash: the auth server's re-hash of the same password at login is no
// drift — the operator leaves the stronger hash and raises no Warning — while a real change
// behind the operator's back is still put back.
func TestReHashIsNotDrift(t *testing.T) {
	for _, b := range backends(store.SQLite, store.PostgreSQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			const pw = "Rehash-pass-1!"
			bc, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			h.secret("hana-pw", map[string]string{"password": string(bc)})
			h.create(user("hana", "hana"))
			var u authv1alpha1.ComfyUser
			h.ready("hana", &u)
			row, _ := h.userRow("hana")
			if row.PasswordHash != string(bc) {
				t.Fatalf("stored %.7s…, want the Secret's bcrypt hash", row.PasswordHash)
			}
			strong, _ := password.Hash(pw)
			if ok, err := h.store.RehashPassword(h.ctx, row.ID, row.PasswordHash, strong); err != nil || !ok {
				t.Fatalf("re-hash: %t %v", ok, err)
			}
			time.Sleep(3 * h.opts.Resync) // a few drift checks
			if row, _ := h.userRow("hana"); row.PasswordHash != strong {
				t.Fatalf("the operator put the Secret's hash back over the re-hash (%.7s…)", row.PasswordHash)
			}
			if ev := h.events("hana"); slices.Contains(ev, "DriftCorrected") {
				t.Fatalf("a re-hash was reported as drift: %v", ev)
			}
			// A real change is still drift.
			other, _ := password.Hash("Someone-else-1!")
			if err := h.store.SetPasswordHash(h.ctx, row.ID, other); err != nil {
				t.Fatal(err)
			}
			h.waitEvent("hana", "DriftCorrected")
			if row, _ := h.userRow("hana"); row.PasswordHash != string(bc) {
				t.Fatalf("a password changed behind the operator's back was not put back (%.7s…)", row.PasswordHash)
			}
		})
	}
}
