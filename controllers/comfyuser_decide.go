package controllers

import (
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

// userRowPlan says what to write to a user's row.
type userRowPlan struct {
	Create  *store.User // a new row, or nil
	Update  *store.User // the row with the resource's fields, or nil when it already matches
	Changed []string    // the fields written, for the Event
}

// planUserRow compares the row (nil: none) with the resource and returns the writes needed
// for role, owner flag, disabled flag and ownership. The password is planned separately.
func planUserRow(spec authv1alpha1.ComfyUserSpec, row *store.User, ref string) userRowPlan {
	if row == nil {
		return userRowPlan{
			Create:  &store.User{Username: spec.Username, Role: spec.Role, Owner: spec.Owner, Disabled: spec.Disabled, OwnerRef: ref},
			Changed: []string{"created"},
		}
	}
	u := *row
	var changed []string
	if u.Role != spec.Role {
		u.Role, changed = spec.Role, append(changed, "role")
	}
	if u.Owner != spec.Owner {
		u.Owner, changed = spec.Owner, append(changed, "owner")
	}
	if u.Disabled != spec.Disabled {
		u.Disabled, changed = spec.Disabled, append(changed, "disabled")
	}
	if u.OwnerRef != ref {
		u.OwnerRef, changed = ref, append(changed, "ownership")
	}
	if len(changed) == 0 {
		return userRowPlan{}
	}
	return userRowPlan{Update: &u, Changed: changed}
}

// passwordNeeded reports whether the Secret's value must be read and written: a new row, a
// Secret version not applied yet, or a password changed in the row since the operator wrote
// it (password_changed_at moved; compared to the millisecond, the database's precision).
// Otherwise the Secret is not even read, and nothing is hashed.
func passwordNeeded(rowExists bool, rowChangedAt time.Time, appliedRV string, appliedAt *metav1.MicroTime, secretRV string) bool {
	if !rowExists || appliedRV != secretRV || appliedAt == nil {
		return true
	}
	return rowChangedAt.UnixMilli() != appliedAt.UnixMilli()
}

// hashForSecretValue turns a Secret value into the hash to store: a bcrypt or argon2id hash
// is stored as is (a trailing newline from `kubectl create secret --from-file` is dropped);
// anything else is a plaintext password and is hashed with argon2id.
func hashForSecretValue(value []byte) (string, error) {
	v := string(value)
	if trimmed := strings.TrimRight(v, "\r\n"); password.IsHash(trimmed) {
		return trimmed, nil
	}
	return password.Hash(v)
}

// releaseAction is what a deleted ComfyUser does to its row.
type releaseAction string

const (
	releaseNothing releaseAction = "nothing" // no row, or not ours
	releaseDisable releaseAction = "disable"
	releaseDelete  releaseAction = "delete"
	releaseOrphan  releaseAction = "orphan"
)

// decideUserRelease applies the deletion policy, touching only a row this resource owns.
func decideUserRelease(policy authv1alpha1.DeletionPolicy, row *store.User, ref string) releaseAction {
	if row == nil || row.OwnerRef != ref {
		return releaseNothing
	}
	switch policy {
	case authv1alpha1.DeletionDelete:
		return releaseDelete
	case authv1alpha1.DeletionOrphan:
		return releaseOrphan
	}
	return releaseDisable
}
