package authserver

import (
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
	inv, invErr := s.inventory(r.Context(), false)
	items := []grantItem{}
	for _, g := range s.cache.get().grants {
		if g.UserID != u.ID && (g.Role == "" || g.Role != u.Role) {
			continue
		}
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
	writeJSON(w, http.StatusOK, map[string]any{"username": u.Username, "role": u.Role, "items": items})
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

func (s *Server) handleAddGrant(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if storeFailed(w, r, err, "No such user.") {
		return
	}
	g, ok := grantOf(w, r)
	if !ok {
		return
	}
	switch err := s.db.AddGrant(r.Context(), u.ID, g, rq.id.user.Username); {
	case errors.Is(err, store.ErrConflict):
		writeError(w, r, http.StatusConflict, "GRANT_EXISTS", "The user already has that grant.")
		return
	case storeFailed(w, r, err, "No such user."):
		return
	}
	_ = s.cache.refresh(r.Context(), false)
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_grant.added", Target: u.Username,
		ClientIP: rq.ip.String(), Detail: g.String()})
	writeJSON(w, http.StatusCreated, map[string]any{"message": "Granted", "folder": g.Folder, "pattern": g.Pattern})
}

func (s *Server) handleDeleteGrant(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	u, err := s.db.UserByName(r.Context(), r.PathValue("username"))
	if storeFailed(w, r, err, "No such user.") {
		return
	}
	g, ok := grantOf(w, r)
	if !ok {
		return
	}
	var owned *store.OwnedError
	switch err := s.db.DeleteGrant(r.Context(), u.ID, u.Role, g); {
	case errors.As(err, &owned):
		writeJSON(w, http.StatusConflict, map[string]any{"code": "GRANT_OWNED_BY_RESOURCE", "owner": managedBy(owned.OwnerRef),
			"error": "That grant comes from " + managedBy(owned.OwnerRef) + ": change it there (kubectl or Git)."})
		return
	case storeFailed(w, r, err, "The user has no such grant."):
		return
	}
	_ = s.cache.refresh(r.Context(), false)
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: rq.id.user.Username, Action: "model_grant.removed", Target: u.Username,
		ClientIP: rq.ip.String(), Detail: g.String()})
	writeJSON(w, http.StatusOK, map[string]any{"message": "Grant removed"})
}
