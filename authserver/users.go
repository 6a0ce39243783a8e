package authserver

// The admin API for users and the roles list.

import (
	"fmt"
	"net/http"
	"sort"
	"strings"

	"github.com/mss-login/mss-login/internal/store"
)

// managedBy turns an owner reference ("ComfyUser/team/alice") into "ComfyUser team/alice".
func managedBy(ref string) string {
	kind, rest, _ := strings.Cut(ref, "/")
	return kind + " " + rest
}

func (s *Server) handleGroups(w http.ResponseWriter, _ *http.Request) {
	snap := s.cache.get()
	out := map[string]any{}
	for name, r := range snap.roles {
		out[name] = map[string]any{"permissions": r.Permissions, "ui": r.UI, "builtin": r.Builtin, "managed_by": r.OwnerRef}
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) handleListUsers(w http.ResponseWriter, _ *http.Request) {
	snap := s.cache.get()
	out := []map[string]any{}
	for _, u := range snap.usersByID {
		out = append(out, map[string]any{"username": u.Username, "role": u.Role, "owner": u.Owner, "disabled": u.Disabled,
			"mfa_enabled": u.MFAEnabled, "managed_by": u.OwnerRef, "created_at": isoOrEmpty(u.CreatedAt),
			"last_login_at": isoOrEmpty(u.LastLoginAt)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i]["username"].(string) < out[j]["username"].(string) })
	writeJSON(w, http.StatusOK, map[string]any{"users": out})
}

// targetUser loads the user named in the path and refuses rows a Kubernetes resource owns.
func (s *Server) targetUser(w http.ResponseWriter, r *http.Request) (store.User, bool) {
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if storeFailed(w, r, err, "No such user.") {
		return u, false
	}
	if u.OwnerRef != "" {
		writeError(w, r, http.StatusConflict, "MANAGED", fmt.Sprintf("managed by %s: change it with kubectl", managedBy(u.OwnerRef)))
		return u, false
	}
	return u, true
}

func (s *Server) handleUpdateUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.targetUser(w, r)
	if !ok {
		return
	}
	f, _, ok := readForm(w, r)
	if !ok {
		return
	}
	if code, errCode, problem := s.updateUser(r, u, f); problem != "" {
		writeError(w, r, code, errCode, problem)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "User updated"})
}

// updateUser applies the form's "role" and "disabled" to a user no resource owns, for the API
// and the console; on a refusal it returns the status, code and message.
func (s *Server) updateUser(r *http.Request, u store.User, f map[string]string) (int, string, string) {
	rq := reqInfo(r)
	before := u
	if role, set := f["role"]; set {
		if _, ok := s.cache.get().roles[role]; !ok {
			return http.StatusBadRequest, "BAD_ROLE", "role: no such role"
		}
		u.Role = role
	}
	if d, set := f["disabled"]; set {
		if u.Owner && d == "true" {
			return http.StatusBadRequest, "OWNER", "disabled: the owner cannot be disabled"
		}
		u.Disabled = d == "true"
	}
	if err := s.db.UpdateUser(r.Context(), u); err != nil {
		return http.StatusInternalServerError, "FAILED", "Could not update the user."
	}
	_ = s.cache.refresh(r.Context(), false) // re-checks the user's sockets
	// One entry per change, named for it (notifications tell a role change from a disable).
	action := store.UserChangeAction(&before, u)
	if action == "" {
		action = "user.updated"
	}
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: action, Target: u.Username,
		ClientIP: rq.ip.String(), Detail: fmt.Sprintf("role %s → %s, disabled %t → %t", before.Role, u.Role, before.Disabled, u.Disabled)})
	return 0, "", ""
}

func (s *Server) handleDeleteUser(w http.ResponseWriter, r *http.Request) {
	u, ok := s.targetUser(w, r)
	if !ok {
		return
	}
	if code, errCode, problem := s.deleteUser(r, u); problem != "" {
		writeError(w, r, code, errCode, problem)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "User deleted"})
}

// deleteUser deletes a user no resource owns, for the API and the console.
func (s *Server) deleteUser(r *http.Request, u store.User) (int, string, string) {
	rq := reqInfo(r)
	if u.Owner || u.ID == rq.id.user.ID {
		return http.StatusBadRequest, "REFUSED", "The owner and your own account cannot be deleted here."
	}
	if err := s.db.DeleteUser(r.Context(), u.ID); err != nil {
		return http.StatusInternalServerError, "FAILED", "Could not delete the user."
	}
	_ = s.cache.refresh(r.Context(), false) // closes the user's sockets
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "user.deleted", Target: u.Username,
		ClientIP: rq.ip.String()})
	return 0, "", ""
}
