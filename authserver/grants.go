package authserver

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"time"

	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
)

// The original's shared-items API (/mss-login/api/users/{username}/shared-items), for the owner
// and can_manage_model_sharing: a user's model grants, with where each comes from; grants made
// here are rows no resource owns. A grant from a ComfyRole or a ComfyUser is changed in Git.

type grantItem struct {
	Folder    string    `json:"folder"`
	Pattern   string    `json:"pattern"`
	Source    string    `json:"source"`            // "ComfyRole <ns>/<name>", "ComfyUser …", or "api"
	Via       string    `json:"via"`               // "role" or "user"
	Matches   *int      `json:"matches,omitempty"` // models ComfyUI lists that it matches now
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
}

func (s *Server) handleListGrants(w http.ResponseWriter, r *http.Request) {
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if storeFailed(w, r, err, "No such user.") {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"username": u.Username, "role": u.Role, "items": s.grantItems(r.Context(), u)})
}

// grantItems lists a user's grants with where each comes from and what it matches now.
func (s *Server) grantItems(ctx context.Context, u store.User) []grantItem {
	inv, invErr := s.inventory(ctx, false)
	items := []grantItem{}
	for _, g := range s.cache.get().grantsOf(u) {
		it := grantItem{Folder: g.Folder, Pattern: g.Pattern, Source: "api", Via: "user", CreatedBy: g.CreatedBy, CreatedAt: g.CreatedAt}
		if g.OwnerRef != "" {
			it.Source = managedBy(g.OwnerRef)
		}
		if g.Role != "" {
			it.Via = "role"
		}
		if invErr == nil {
			n := 0
			for name, folders := range inv.byName {
				for _, f := range folders {
					if f == modelgrant.Canonical(g.Folder) && g.Matches(name) {
						n++
					}
				}
			}
			it.Matches = &n
		}
		items = append(items, it)
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].Folder < items[j].Folder })
	return items
}

// grantOf reads {"folder", "pattern"} (the original's "name" is taken for pattern) from a form
// or JSON body, or the query of a DELETE.
func grantOf(w http.ResponseWriter, r *http.Request) (modelgrant.Grant, bool) {
	f, _, ok := readForm(w, r)
	if !ok {
		return modelgrant.Grant{}, false
	}
	q := r.URL.Query()
	pick := func(keys ...string) string {
		for _, k := range keys {
			if v := f[k]; v != "" {
				return v
			}
			if v := q.Get(k); v != "" {
				return v
			}
		}
		return ""
	}
	g := modelgrant.Grant{Folder: pick("folder"), Pattern: pick("pattern", "name")}
	if err := g.Validate(); err != nil {
		writeError(w, r, http.StatusBadRequest, "BAD_GRANT", err.Error())
		return g, false
	}
	return g, true
}

// grantRequest reads the user of the path and the grant of the body; false when it answered.
func (s *Server) grantRequest(w http.ResponseWriter, r *http.Request) (store.User, modelgrant.Grant, bool) {
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if storeFailed(w, r, err, "No such user.") {
		return u, modelgrant.Grant{}, false
	}
	g, ok := grantOf(w, r)
	return u, g, ok
}

func (s *Server) handleAddGrant(w http.ResponseWriter, r *http.Request) {
	u, g, ok := s.grantRequest(w, r)
	if !ok {
		return
	}
	if code, errCode, problem := s.addGrant(r, u, g); problem != "" {
		writeError(w, r, code, errCode, problem)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"message": "Granted", "folder": g.Folder, "pattern": g.Pattern})
}

func (s *Server) handleDeleteGrant(w http.ResponseWriter, r *http.Request) {
	u, g, ok := s.grantRequest(w, r)
	if !ok {
		return
	}
	if code, errCode, problem, owner := s.removeGrant(r, u, g); problem != "" {
		if owner != "" {
			writeJSON(w, code, map[string]any{"code": errCode, "owner": owner, "error": problem})
			return
		}
		writeError(w, r, code, errCode, problem)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Grant removed"})
}

// addGrant grants u a folder's models matching a pattern (a row no resource owns), for the API
// and the console; on a refusal it returns the status, code and message.
func (s *Server) addGrant(r *http.Request, u store.User, g modelgrant.Grant) (int, string, string) {
	rq := reqInfo(r)
	switch err := s.db.AddGrant(r.Context(), u.ID, g, rq.id.user.Username); {
	case errors.Is(err, store.ErrConflict):
		return http.StatusConflict, "GRANT_EXISTS", "The user already has that grant."
	case errors.Is(err, modelgrant.ErrPattern):
		return http.StatusBadRequest, "BAD_GRANT", err.Error()
	case err != nil:
		return http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable."
	}
	_ = s.cache.refresh(r.Context(), false)
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_grant.added", Target: u.Username,
		ClientIP: rq.ip.String(), Detail: g.String()})
	return 0, "", ""
}

// removeGrant removes a grant made here; one a resource owns is refused, naming it.
func (s *Server) removeGrant(r *http.Request, u store.User, g modelgrant.Grant) (code int, errCode, problem, owner string) {
	rq := reqInfo(r)
	var owned *store.OwnedError
	switch err := s.db.DeleteGrant(r.Context(), u.ID, u.Role, g); {
	case errors.As(err, &owned):
		by := managedBy(owned.OwnerRef)
		return http.StatusConflict, "GRANT_OWNED_BY_RESOURCE", "That grant comes from " + by + ": change it there (kubectl or Git).", by
	case errors.Is(err, store.ErrNotFound):
		return http.StatusNotFound, "NOT_FOUND", "The user has no such grant.", ""
	case err != nil:
		return http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable.", ""
	}
	_ = s.cache.refresh(r.Context(), false)
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_grant.removed", Target: u.Username,
		ClientIP: rq.ip.String(), Detail: g.String()})
	return 0, "", "", ""
}
