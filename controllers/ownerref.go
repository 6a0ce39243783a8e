package controllers

import (
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"
)

// ownerRef is the value of the owner_ref column for rows a resource owns:
// "<Kind>/<namespace>/<name>". The API limits metadata.name to 63 characters so the value fits
// the 191-character column.
func ownerRef(kind string, obj client.Object) string {
	return kind + "/" + obj.GetNamespace() + "/" + obj.GetName()
}

// parseOwnerRef splits an owner_ref value; ok is false for "" and for values of other shapes.
func parseOwnerRef(ref string) (kind, namespace, name string, ok bool) {
	parts := strings.Split(ref, "/")
	if len(parts) != 3 || parts[0] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
