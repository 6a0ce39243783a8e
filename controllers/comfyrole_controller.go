package controllers

import (
	"context"
	"errors"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// roleSyncer writes a ComfyRole to its role row.
type roleSyncer struct {
	deps
}

// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=comfyroles,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=comfyroles/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=comfyroles/finalizers,verbs=update

func (s roleSyncer) Apply(ctx context.Context, obj *authv1alpha1.ComfyRole, ref string) (outcome, error) {
	name := obj.EffectiveRoleName()
	obj.Status.RoleName = name
	obj.Status.Builtin = roles.IsBuiltin(name)

	var rivals authv1alpha1.ComfyRoleList
	if err := s.client.List(ctx, &rivals, matchingField(indexRoleName, name)); err != nil {
		return outcome{}, err
	}
	winner := winnerOf(ptrs(rivals.Items))
	row, err := s.store.Role(ctx, name)
	exists := err == nil
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return outcome{}, err
	}
	gone, err := s.ownerGone(ctx, row.OwnerRef)
	if err != nil {
		return outcome{}, err
	}
	dec := decideOwnership(ownershipInputs{
		What: "role " + name, MyRef: ref, RowExists: exists, RowOwnerRef: row.OwnerRef, RowOwnerGone: gone,
		Adopt: obj.Spec.Adopt, FreeToTake: row.Builtin, WinnerRef: refOf(kindRole, winner),
	})
	if !dec.Allowed {
		return outcome{Reason: dec.Reason, Message: dec.Message}, nil
	}
	want := desiredRole(name, obj.Spec)
	out := outcome{Ready: true, Message: readyRoleMessage(name, obj.Status.Builtin)}
	if !exists || row.OwnerRef != ref || !sameRole(row.Role, want) {
		if err := s.store.PutRole(ctx, want, ref); err != nil {
			return outcome{}, err
		}
		changed := "permissions"
		switch {
		case !exists:
			changed = "created"
		case row.OwnerRef != ref && row.Builtin:
			changed = "overrode built-in role"
		case dec.Adopting:
			changed = "adopted"
		}
		out.Changed = []string{changed}
	}
	grants, err := s.syncGrants(ctx, ref, name, "", obj.Spec.Models)
	if err != nil {
		return outcome{}, err
	}
	grants.apply(&out, &obj.Status.SyncStatus, &obj.Status.Models)
	return out, nil
}

func readyRoleMessage(name string, builtin bool) string {
	if builtin {
		return "built-in role " + name + " is overridden by this resource; deleting it restores the original's defaults"
	}
	return "role " + name + " is applied"
}

// Release deletes the role, or returns a built-in role to the original's defaults. A row that
// is gone or owned by someone else is left alone.
func (s roleSyncer) Release(ctx context.Context, obj *authv1alpha1.ComfyRole, ref string) error {
	name := obj.EffectiveRoleName()
	row, err := s.store.Role(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if row.OwnerRef != ref {
		return s.store.ReplaceOwnedGrants(ctx, ref, name, "", nil)
	}
	if err := s.store.DeleteRole(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return s.store.ReplaceOwnedGrants(ctx, ref, name, "", nil)
}
