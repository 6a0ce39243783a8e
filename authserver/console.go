package authserver

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// The admin console (/mss-login/admin, owner and admins): server-rendered pages with plain
// forms, no script, the same CSP as the login pages. Every change is a POST (same-origin
// checked by the one decision) through the same functions as the JSON API, and audited. Rows a
// resource owns are shown read-only, naming it.

func (s *Server) handleConsole(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, "/mss-login/admin/users", http.StatusSeeOther)
}

func (s *Server) renderUsers(w http.ResponseWriter, r *http.Request, code int, notice, problem string) {
	users, err := s.db.Users(r.Context())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	slices.SortFunc(users, func(a, b store.User) int {
		if a.Username < b.Username {
			return -1
		}
		return 1
	})
	renderPage(w, code, "admin-users.html", map[string]any{"Tab": "users", "Users": users,
		"Roles": slices.Sorted(maps.Keys(s.cache.get().roles)), "Notice": notice, "Error": problem})
}

func (s *Server) handleConsoleUsers(w http.ResponseWriter, r *http.Request) {
	s.renderUsers(w, r, http.StatusOK, "", "")
}

// handleConsoleUser applies one action of the users page (role, disable, enable, delete).
func (s *Server) handleConsoleUser(w http.ResponseWriter, r *http.Request) {
	f, _, err := form(r)
	if err != nil {
		s.renderUsers(w, r, http.StatusBadRequest, "", "Unreadable request.")
		return
	}
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if err != nil {
		s.renderUsers(w, r, http.StatusNotFound, "", "No such user.")
		return
	}
	if u.OwnerRef != "" {
		s.renderUsers(w, r, http.StatusConflict, "", u.Username+" is managed by "+managedBy(u.OwnerRef)+": change it in Git (kubectl).")
		return
	}
	var code int
	var problem, done string
	switch f["action"] {
	case "role":
		code, _, problem = s.updateUser(r, u, map[string]string{"role": f["role"]})
		done = u.Username + " now has the role " + f["role"] + "."
	case "disable", "enable":
		code, _, problem = s.updateUser(r, u, map[string]string{"disabled": strconv.FormatBool(f["action"] == "disable")})
		done = u.Username + " is " + f["action"] + "d."
	case "delete":
		code, _, problem = s.deleteUser(r, u)
		done = u.Username + " is deleted."
	case "reset-password":
		code, problem = s.resetPassword(r, u, f["new_password"])
		done = u.Username + "'s password is set; their sessions and API tokens were ended."
	case "reset-mfa":
		code, problem = s.resetMFA(r, u)
		done = u.Username + "'s MFA is reset: they enrol again at their next login if their role requires it."
	default:
		code, problem = http.StatusBadRequest, "action: one of role, disable, enable, delete, reset-password, reset-mfa"
	}
	if problem != "" {
		s.renderUsers(w, r, code, "", problem)
		return
	}
	s.renderUsers(w, r, http.StatusOK, done, "")
}

func (s *Server) handleConsoleAudit(w http.ResponseWriter, r *http.Request) {
	q, field, ok := auditQuery(r)
	data := map[string]any{"Tab": "audit", "Query": q, "Since": r.URL.Query().Get("since"), "Until": r.URL.Query().Get("until")}
	if !ok {
		data["Error"] = field
		renderPage(w, http.StatusBadRequest, "admin-audit.html", data)
		return
	}
	if q.Limit == 0 {
		q.Limit = 50
	}
	events, next, err := s.db.QueryAudit(r.Context(), q)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	data["Events"] = events
	if next > 0 {
		v := r.URL.Query()
		v.Set("cursor", strconv.FormatInt(next, 10))
		data["Next"] = "/mss-login/admin/audit?" + v.Encode()
	}
	renderPage(w, http.StatusOK, "admin-audit.html", data)
}

func (s *Server) renderGrants(w http.ResponseWriter, r *http.Request, code int, u store.User, notice, problem string) {
	renderPage(w, code, "admin-grants.html", map[string]any{"Tab": "users", "User": u, "Items": s.grantItems(r.Context(), u),
		"Folders": modelgrant.Folders, "Notice": notice, "Error": problem,
		"SeesAll": seesAll(&identity{user: u, role: s.cache.get().role(u.Role)})})
}

func (s *Server) handleConsoleGrants(w http.ResponseWriter, r *http.Request) {
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if err != nil {
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "No such user.")
		return
	}
	s.renderGrants(w, r, http.StatusOK, u, "", "")
}

// handleConsoleGrant grants or revokes a model grant made here.
func (s *Server) handleConsoleGrant(w http.ResponseWriter, r *http.Request) {
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if err != nil {
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "No such user.")
		return
	}
	f, _, err := form(r)
	if err != nil {
		s.renderGrants(w, r, http.StatusBadRequest, u, "", "Unreadable request.")
		return
	}
	g := modelgrant.Grant{Folder: f["folder"], Pattern: f["pattern"]}
	if err := g.Validate(); err != nil {
		s.renderGrants(w, r, http.StatusBadRequest, u, "", err.Error())
		return
	}
	var code int
	var problem, done string
	switch f["action"] {
	case "add":
		code, _, problem = s.addGrant(r, u, g)
		done = "Granted " + g.String() + "."
	case "remove":
		code, _, problem, _ = s.removeGrant(r, u, g)
		done = "Revoked " + g.String() + "."
	default:
		code, problem = http.StatusBadRequest, "action: add or remove"
	}
	if problem != "" {
		s.renderGrants(w, r, code, u, "", problem)
		return
	}
	s.renderGrants(w, r, http.StatusOK, u, done, "")
}

func (s *Server) renderRoles(w http.ResponseWriter, r *http.Request, code int, notice, problem string) {
	rs, err := s.db.Roles(r.Context())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	unsupported := map[string]bool{}
	for p := range roles.Unsupported {
		unsupported[p] = true
	}
	renderPage(w, code, "admin-roles.html", map[string]any{"Tab": "roles", "Roles": rs, "Permissions": roles.Permissions,
		"Describe": roles.Describe, "Unsupported": unsupported, "Notice": notice, "Error": problem})
}

func (s *Server) handleConsoleRoles(w http.ResponseWriter, r *http.Request) {
	s.renderRoles(w, r, http.StatusOK, "", "")
}

// handleConsoleRole saves a role's permissions from the form: a checked box is true, any other
// known permission false (the unsupported ones stay false). A role a resource owns is refused.
func (s *Server) handleConsoleRole(w http.ResponseWriter, r *http.Request) {
	rq, ctx := reqInfo(r), r.Context()
	f, _, err := form(r)
	if err != nil {
		s.renderRoles(w, r, http.StatusBadRequest, "", "Unreadable request.")
		return
	}
	cur, err := s.db.Role(ctx, r.PathValue("name"))
	if err != nil {
		s.renderRoles(w, r, http.StatusNotFound, "", "No such role.")
		return
	}
	if cur.OwnerRef != "" {
		s.renderRoles(w, r, http.StatusConflict, "", "Role "+cur.Name+" is managed by "+managedBy(cur.OwnerRef)+": change it in Git (kubectl).")
		return
	}
	next := roles.Role{Name: cur.Name, Permissions: map[string]bool{}, UI: cur.UI}
	var on []string
	for _, p := range roles.Permissions {
		_, unsupported := roles.Unsupported[p]
		next.Permissions[p] = f[p] == "true" && !unsupported
		if next.Permissions[p] {
			on = append(on, p)
		}
	}
	if err := s.db.PutRole(ctx, next, ""); err != nil {
		s.renderRoles(w, r, http.StatusServiceUnavailable, "", "Could not save the role.")
		return
	}
	_ = s.cache.refresh(ctx, false) // re-checks the members' sockets
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: rq.id.user.Username, Action: "role.updated", Target: cur.Name, ClientIP: rq.ip.String(),
		Detail: "permissions " + strings.Join(on, " ")})
	s.renderRoles(w, r, http.StatusOK, "Role "+cur.Name+" saved.", "")
}

// handleConsoleStatus shows the release check's last answer and the effective configuration
// (its secrets are never marshalled: config.Secret fields are left out of JSON).
func (s *Server) handleConsoleStatus(w http.ResponseWriter, r *http.Request) {
	update := "No release check has run yet (the manager's leader checks; auto_update.enabled)."
	if v, ok, err := s.db.Setting(r.Context(), "update_status"); err == nil && ok {
		var st struct {
			Available bool   `json:"update_available"`
			Latest    string `json:"latest_version"`
			Current   string `json:"current_version"`
			CheckedAt string `json:"checked_at"`
		}
		if json.Unmarshal([]byte(v), &st) == nil {
			update = "Up to date"
			if st.Available {
				update = "A new release is available: " + st.Latest
			}
			if st.Current != "" {
				update += " (running " + st.Current + ")"
			}
			if st.CheckedAt != "" {
				update += "; checked " + st.CheckedAt
			}
			update += "."
		}
	}
	cfg, _ := json.MarshalIndent(s.cfg, "", "  ")
	renderPage(w, http.StatusOK, "admin-status.html", map[string]any{"Tab": "status", "Update": update, "Config": string(cfg)})
}

// resetPassword sets a user's password (as the break-glass command does) and ends their
// sessions and API tokens.
func (s *Server) resetPassword(r *http.Request, u store.User, pw string) (int, string) {
	ctx, rq := r.Context(), reqInfo(r)
	if err := validatePassword(pw); err != nil {
		return http.StatusBadRequest, "new_password: " + err.Error()
	}
	hash, err := password.Hash(pw)
	if err != nil {
		return http.StatusBadRequest, "new_password: " + err.Error()
	}
	if err := s.db.SetPasswordHash(ctx, u.ID, hash); err != nil {
		return http.StatusServiceUnavailable, "Could not set the password."
	}
	if err := s.db.RevokeUserCredentials(ctx, u.ID); err != nil {
		return http.StatusServiceUnavailable, "The password is set, but the sessions could not be ended: try again."
	}
	_ = s.cache.refresh(ctx, false) // closes their sockets
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: rq.id.user.Username, Action: "password.reset", Target: u.Username, ClientIP: rq.ip.String(),
		Detail: "admin console"})
	return 0, ""
}

// resetMFA removes a user's second factor and backup codes.
func (s *Server) resetMFA(r *http.Request, u store.User) (int, string) {
	ctx, rq := r.Context(), reqInfo(r)
	if err := s.db.SetMFA(ctx, u.ID, "", false); err != nil {
		return http.StatusServiceUnavailable, "Could not reset MFA."
	}
	_ = s.cache.refresh(ctx, false)
	_ = s.db.Audit(ctx, store.AuditEvent{Actor: rq.id.user.Username, Action: "mfa.reset", Target: u.Username, ClientIP: rq.ip.String(),
		Detail: "admin console"})
	return 0, ""
}
