package controllers

import (
	"maps"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/roles"
)

// desiredRole is the role row a ComfyRole asks for. Every known permission is written
// explicitly: a flag the resource does not list is false for a custom role and keeps the
// original's default for a built-in one, so overriding one flag of "admin" does not strip
// the others.
func desiredRole(name string, spec authv1alpha1.ComfyRoleSpec) roles.Role {
	r := roles.Role{Name: name, Permissions: map[string]bool{}, UI: map[string]bool{}}
	base, builtin := roles.Default(name)
	for _, p := range roles.Permissions {
		r.Permissions[p] = builtin && base.Permissions[p]
	}
	maps.Copy(r.Permissions, spec.Permissions)
	maps.Copy(r.UI, spec.UI)
	return r
}

// sameRole reports whether the stored role already has the desired flags.
func sameRole(stored, want roles.Role) bool {
	return maps.Equal(nonNilMap(stored.Permissions), nonNilMap(want.Permissions)) &&
		maps.Equal(nonNilMap(stored.UI), nonNilMap(want.UI))
}

func nonNilMap(m map[string]bool) map[string]bool {
	if m == nil {
		return map[string]bool{}
	}
	return m
}
