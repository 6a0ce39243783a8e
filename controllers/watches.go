package controllers

import (
	"context"
	"strings"

	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
)

func usernameKey(name string) string { return strings.ToLower(name) }

// mapTo turns a lookup of related objects into an event handler.
func mapTo(c client.Client, related func(context.Context, client.Client, client.Object) []types.NamespacedName) handler.EventHandler {
	return handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		names := related(ctx, c, o)
		out := make([]reconcile.Request, 0, len(names))
		for _, n := range names {
			out = append(out, reconcile.Request{NamespacedName: n})
		}
		return out
	})
}

// usersWithSameUsername: when a ComfyUser comes or goes, the others wanting its username
// may now win (or lose) the username.
func usersWithSameUsername(ctx context.Context, c client.Client, o client.Object) []types.NamespacedName {
	u := o.(*authv1alpha1.ComfyUser)
	var list authv1alpha1.ComfyUserList
	if err := c.List(ctx, &list, matchingField(indexUsernameKey, usernameKey(u.Spec.Username))); err != nil {
		return nil
	}
	return namesExcept(ptrs(list.Items), o)
}

// usersOfRole: a ComfyRole appeared, changed or went; users that name it re-check it.
func usersOfRole(ctx context.Context, c client.Client, o client.Object) []types.NamespacedName {
	var list authv1alpha1.ComfyUserList
	if err := c.List(ctx, &list, matchingField(indexUserRole, o.(*authv1alpha1.ComfyRole).EffectiveRoleName())); err != nil {
		return nil
	}
	return namesExcept(ptrs(list.Items), nil)
}

// usersOfSecret: a Secret changed; the users whose password it holds apply it.
func usersOfSecret(ctx context.Context, c client.Client, o client.Object) []types.NamespacedName {
	var list authv1alpha1.ComfyUserList
	if err := c.List(ctx, &list, client.InNamespace(o.GetNamespace()),
		matchingField(indexUserSecret, o.GetNamespace()+"/"+o.GetName())); err != nil {
		return nil
	}
	return namesExcept(ptrs(list.Items), nil)
}

// rolesWithSameName: like usersWithSameUsername, for role names.
func rolesWithSameName(ctx context.Context, c client.Client, o client.Object) []types.NamespacedName {
	var list authv1alpha1.ComfyRoleList
	if err := c.List(ctx, &list, matchingField(indexRoleName, o.(*authv1alpha1.ComfyRole).EffectiveRoleName())); err != nil {
		return nil
	}
	return namesExcept(ptrs(list.Items), o)
}

func namesExcept[T client.Object](items []T, except client.Object) []types.NamespacedName {
	var out []types.NamespacedName
	for _, it := range items {
		if except != nil && it.GetNamespace() == except.GetNamespace() && it.GetName() == except.GetName() {
			continue
		}
		out = append(out, types.NamespacedName{Namespace: it.GetNamespace(), Name: it.GetName()})
	}
	return out
}
