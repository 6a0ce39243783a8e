package controllers

import (
	"context"
	"errors"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
)

// userStore is what the ComfyUser path asks of the users database, besides the grants
// (deps.syncGrants): the user's row, the role it names, who holds the owner flag, and the
// release of the row and its grants.
type userStore interface {
	UserByUsernameKey(ctx context.Context, name string) (store.User, error)
	Owner(ctx context.Context) (store.User, error)
	Role(ctx context.Context, name string) (store.Role, error)
	CreateUser(ctx context.Context, u *store.User) error
	UpdateUser(ctx context.Context, u store.User) error
	UpdateUserAndPassword(ctx context.Context, id string, u *store.User, hash string) (store.User, error)
	DeleteUser(ctx context.Context, id string) error
	ReplaceOwnedGrants(ctx context.Context, ownerRef, role, userID string, grants []modelgrant.Grant) error
	DisownGrants(ctx context.Context, ownerRef string) error
	Audit(ctx context.Context, e store.AuditEvent) error
}

var _ userStore = (*store.Store)(nil)

// auditRow records what a write did to a user row (notifications read the trail): created,
// role changed, disabled or enabled; prev is the row before (nil: created).
func (s userSyncer) auditRow(ctx context.Context, prev *store.User, now store.User, ref string) {
	action := store.UserChangeAction(prev, now)
	if action == "" {
		return
	}
	_ = s.users.Audit(ctx, store.AuditEvent{Actor: "operator", Action: action, Target: now.Username,
		Detail: fmt.Sprintf("%s, role %s", ref, now.Role)})
}

// userSyncer writes a ComfyUser to its user row.
type userSyncer struct {
	deps
	users userStore
}

// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=comfyusers,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=comfyusers/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=comfyusers/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get;list;watch

func (s userSyncer) Apply(ctx context.Context, u *authv1alpha1.ComfyUser, ref string) (outcome, error) {
	name := u.Spec.Username
	var rivals authv1alpha1.ComfyUserList
	if err := s.client.List(ctx, &rivals, matchingField(indexUsernameKey, usernameKey(name))); err != nil {
		return outcome{}, err
	}
	var row *store.User
	found, err := s.users.UserByUsernameKey(ctx, name)
	switch {
	case err == nil:
		row = &found
	case !errors.Is(err, store.ErrNotFound):
		return outcome{}, err
	}
	rowOwner := ""
	if row != nil {
		rowOwner = row.OwnerRef
	}
	gone, err := s.ownerGone(ctx, rowOwner)
	if err != nil {
		return outcome{}, err
	}
	dec := decideOwnership(ownershipInputs{
		What: "user " + name, MyRef: ref, RowExists: row != nil, RowOwnerRef: rowOwner, RowOwnerGone: gone,
		Adopt: u.Spec.Adopt, WinnerRef: refOf(kindUser, winnerOf(ptrs(rivals.Items))),
	})
	if !dec.Allowed {
		return outcome{Reason: dec.Reason, Message: dec.Message}, nil
	}
	if _, err := s.users.Role(ctx, u.Spec.Role); errors.Is(err, store.ErrNotFound) {
		return outcome{Reason: "RoleNotFound", Message: fmt.Sprintf(
			"role %q does not exist in the database (built-in: admin, power, user, guest; others come from a ComfyRole); nothing was changed", u.Spec.Role)}, nil
	} else if err != nil {
		return outcome{}, err
	}

	pw, err := s.password(ctx, u, row)
	if err != nil {
		return outcome{}, err
	}
	pwCond := pw.condition()
	if row == nil && !pw.OK {
		return outcome{Reason: pw.Reason, Message: pw.Message, Conditions: []metav1.Condition{pwCond}}, nil
	}

	plan := planUserRow(u.Spec, row, ref)
	changed := plan.Changed
	switch {
	case plan.Create != nil:
		plan.Create.PasswordHash = pw.Hash
		if err = s.users.CreateUser(ctx, plan.Create); err == nil {
			s.auditRow(ctx, nil, *plan.Create, ref)
		}
		row = plan.Create
	case plan.Update != nil || pw.Hash != "":
		// One transaction writes the fields and the password and reads back the time the
		// database stamped, so that a later change by someone else shows.
		var fresh store.User
		if fresh, err = s.users.UpdateUserAndPassword(ctx, row.ID, plan.Update, pw.Hash); err == nil {
			s.auditRow(ctx, row, fresh, ref)
			row = &fresh
			if pw.Hash != "" {
				changed = append(changed, "password")
			}
		}
	}
	if errors.Is(err, store.ErrOwnerTaken) {
		return s.ownerTaken(ctx, name, pwCond)
	}
	if err != nil {
		return outcome{}, err
	}
	u.Status.UserID = row.ID
	if pw.RV != "" {
		u.Status.PasswordSecretResourceVersion = pw.RV
		if pw.Hash != "" || pw.Verified || u.Status.PasswordChangedAt == nil {
			t := metav1.NewMicroTime(row.PasswordChangedAt)
			u.Status.PasswordChangedAt = &t
		}
	}
	out := outcome{Ready: pw.OK, Conditions: []metav1.Condition{pwCond}, Changed: changed, NewInput: pw.NewInput}
	grants, err := s.syncGrants(ctx, ref, "", row.ID, u.Spec.Models)
	if err != nil {
		return outcome{}, err
	}
	grants.apply(&out, &u.Status.SyncStatus, &u.Status.Models)
	if dec.Adopting {
		out.Events = append(out.Events, event{Type: "Normal", Reason: "Adopted", Note: "user " + name + " existed unmanaged and is now owned by this resource"})
	}
	if pw.OK {
		out.Message = "user " + name + " is applied"
	} else {
		out.Reason, out.Message = pw.Reason, pw.Message
	}
	return out, nil
}

// ownerTaken reports a second owner. The row was not touched: the write is one transaction.
func (s userSyncer) ownerTaken(ctx context.Context, name string, pwCond metav1.Condition) (outcome, error) {
	holder := "another user"
	if o, err := s.users.Owner(ctx); err == nil {
		holder = "user " + o.Username
	}
	return outcome{Reason: "OwnerTaken", Conditions: []metav1.Condition{pwCond}, Message: fmt.Sprintf(
		"%s is already the owner and there is at most one; user %s was not changed", holder, name)}, nil
}

// Release applies the deletion policy to a row this resource owns; a row that is gone or
// belongs to someone else is left alone and the finalizer is released.
func (s userSyncer) Release(ctx context.Context, u *authv1alpha1.ComfyUser, ref string) error {
	var row *store.User
	found, err := s.users.UserByUsernameKey(ctx, u.Spec.Username)
	switch {
	case err == nil:
		row = &found
	case !errors.Is(err, store.ErrNotFound):
		return err
	}
	// The grants this resource made go with it; an orphaned user keeps them as their own.
	grants := func() error { return s.users.ReplaceOwnedGrants(ctx, ref, "", "", nil) }
	switch decideUserRelease(u.Spec.DeletionPolicy, row, ref) {
	case releaseDelete:
		if err = s.users.DeleteUser(ctx, row.ID); err == nil {
			_ = s.users.Audit(ctx, store.AuditEvent{Actor: "operator", Action: "user.deleted", Target: row.Username, Detail: ref})
		}
	case releaseOrphan:
		row.OwnerRef = ""
		if err = s.users.UpdateUser(ctx, *row); err == nil {
			grants = func() error { return s.users.DisownGrants(ctx, ref) }
		}
	case releaseDisable:
		// UpdateUser revokes the user's sessions and API tokens in the same transaction.
		prev := *row
		row.Disabled = true
		if err = s.users.UpdateUser(ctx, *row); err == nil {
			s.auditRow(ctx, &prev, *row, ref)
		}
	}
	if err == nil || errors.Is(err, store.ErrNotFound) {
		err = grants()
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
