package controllers

import (
	"context"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/store"
)

// Kinds, as used in owner_ref values.
const (
	kindUser   = "ComfyUser"
	kindRole   = "ComfyRole"
	kindIPRule = "IPRule"
)

// deps is what every syncer uses.
type deps struct {
	client client.Client // cached reads, writes
	reader client.Reader // uncached reads (Secret values are not cached)
	store  *store.Store
	now    func() time.Time
}

// ownerGone reports whether an owner_ref names a resource of ours that no longer exists.
// Unknown shapes and kinds count as present: the operator never takes a row from an owner
// it cannot check.
func (d deps) ownerGone(ctx context.Context, ref string) (bool, error) {
	kind, ns, name, ok := parseOwnerRef(ref)
	if !ok {
		return false, nil
	}
	var obj client.Object
	switch kind {
	case kindUser:
		obj = &authv1alpha1.ComfyUser{}
	case kindRole:
		obj = &authv1alpha1.ComfyRole{}
	default:
		return false, nil
	}
	err := d.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, obj)
	if apierrors.IsNotFound(err) {
		return true, nil
	}
	return false, err
}

// matchingField selects objects by a field index across all namespaces.
func matchingField(index, value string) client.MatchingFields {
	return client.MatchingFields{index: value}
}

// ptrs returns pointers to the items of a list, for the generic helpers.
func ptrs[T any](items []T) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// refOf is the owner_ref of obj, or "" when obj is nil.
func refOf[T client.Object](kind string, obj T) string {
	var zero T
	if any(obj) == any(zero) {
		return ""
	}
	return ownerRef(kind, obj)
}
