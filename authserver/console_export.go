package authserver

import (
	"maps"
	"net/http"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/roles"
)

// The admin console's export: the manifest that moves a row created here to Git.

// handleConsoleExport answers the manifest that would manage a row created here from Git: a
// ComfyUser (adopting the user, its role, state and the models granted here) or a ComfyRole.
// Moving to GitOps is one copy; the password stays where it is unless a Secret is named.
func (s *Server) handleConsoleExport(w http.ResponseWriter, r *http.Request) {
	ctx, name := r.Context(), r.PathValue("name")
	var obj any
	var head string
	switch r.PathValue("kind") {
	case "user":
		u, err := s.db.UserByName(ctx, name)
		if err != nil {
			writeError(w, r, http.StatusNotFound, "NOT_FOUND", "No such user.")
			return
		}
		cu := &authv1alpha1.ComfyUser{TypeMeta: metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "ComfyUser"},
			ObjectMeta: metav1.ObjectMeta{Name: resourceName(u.Username)},
			Spec:       authv1alpha1.ComfyUserSpec{Username: u.Username, Role: u.Role, Disabled: u.Disabled, Owner: u.Owner, Adopt: true}}
		byFolder := map[string][]string{}
		for _, g := range s.cache.get().grants {
			if g.UserID == u.ID && g.OwnerRef == "" {
				byFolder[g.Folder] = append(byFolder[g.Folder], g.Pattern)
			}
		}
		for _, f := range slices.Sorted(maps.Keys(byFolder)) {
			cu.Spec.Models = append(cu.Spec.Models, authv1alpha1.ModelGrant{Folder: f, Patterns: byFolder[f]})
		}
		obj = cu
		head = "# The ComfyUser that manages " + u.Username + " from Git (kubectl apply -n <namespace> -f -).\n" +
			"# It adopts the existing user; the password stays as it is. To keep it in Git too, create a Secret and add\n" +
			"#   passwordSecretRef: {name: " + resourceName(u.Username) + "-password}\n" +
			"# Grants made in the console become this resource's; remove them here afterwards.\n"
	case "role":
		ro, err := s.db.Role(ctx, name)
		if err != nil {
			writeError(w, r, http.StatusNotFound, "NOT_FOUND", "No such role.")
			return
		}
		cr := &authv1alpha1.ComfyRole{TypeMeta: metav1.TypeMeta{APIVersion: authv1alpha1.GroupVersion.String(), Kind: "ComfyRole"},
			ObjectMeta: metav1.ObjectMeta{Name: resourceName(ro.Name)},
			Spec:       authv1alpha1.ComfyRoleSpec{RoleName: ro.Name, Permissions: map[string]bool{}, UI: ro.UI, Adopt: !ro.Builtin}}
		for p, on := range ro.Permissions {
			if _, unsupported := roles.Unsupported[p]; on && !unsupported {
				cr.Spec.Permissions[p] = true
			}
		}
		obj = cr
		head = "# The ComfyRole that manages role " + ro.Name + " from Git (kubectl apply -n <namespace> -f -).\n"
	default:
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "Export a user or a role.")
		return
	}
	out, err := yaml.Marshal(obj)
	if err != nil {
		writeError(w, r, http.StatusInternalServerError, "FAILED", "Could not write the manifest.")
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", `inline; filename="`+resourceName(name)+`.yaml"`)
	_, _ = w.Write([]byte(head + string(out)))
}

// resourceName turns a username or role name into a Kubernetes object name (DNS-1123).
func resourceName(n string) string {
	b := []byte(strings.ToLower(n))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-.")
}
