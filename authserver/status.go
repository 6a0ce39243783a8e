package authserver

// Read-only status routes: readiness, the caller's identity, IP lists, the release check.

import (
	"context"
	"net/http"
	"time"

	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "users database unreachable"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

func (s *Server) handleMe(w http.ResponseWriter, r *http.Request) {
	id := reqInfo(r).id
	groups := []string{id.role.Name}
	if id.user.Owner {
		groups = []string{"owner", id.role.Name}
	}
	perms := map[string]bool{}
	for _, p := range roles.Permissions {
		perms[p] = id.can(p)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"username": id.user.Username, "role": id.role.Name, "groups": groups, "is_admin": id.isAdmin(),
		"is_owner": id.user.Owner, "mfa_enabled": id.user.MFAEnabled, "experimental_features": s.cfg.ExperimentalFeatures,
		"permissions": perms, "ui": id.role.UI, "managed_by": id.user.OwnerRef,
	})
}

// handleIPLists shows the rules in the original's shape (whitelist / blacklist) plus the source.
func (s *Server) handleIPLists(w http.ResponseWriter, r *http.Request) {
	rules, err := s.db.IPRules(r.Context())
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	now := s.now()
	white, black := []string{}, []map[string]any{}
	for _, x := range rules {
		if !x.Active(now) {
			continue
		}
		if x.Action == store.Allow {
			white = append(white, x.CIDR.String())
			continue
		}
		e := map[string]any{"ip": x.CIDR.String(), "permanent": x.ExpiresAt.IsZero(), "source": x.Source,
			"reason": x.Reason, "managed_by": x.OwnerRef}
		if !x.ExpiresAt.IsZero() {
			e["expires_at"] = isoOrEmpty(x.ExpiresAt)
		}
		black = append(black, e)
	}
	writeJSON(w, http.StatusOK, map[string]any{"whitelist": white, "blacklist": black})
}

// handleUpdateStatus returns what the manager's release check stored (the original's fields).
func (s *Server) handleUpdateStatus(w http.ResponseWriter, r *http.Request) {
	v, ok, err := s.db.Setting(r.Context(), "update_status")
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	if !ok {
		writeJSON(w, http.StatusOK, map[string]any{"update_available": false, "mode": "notify", "checked": false})
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(v))
}
