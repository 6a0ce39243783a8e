package authserver

// The caller's sessions and password.

import "net/http"

func (s *Server) handleListSessions(w http.ResponseWriter, r *http.Request) {
	id := reqInfo(r).id
	list, err := s.db.Sessions(r.Context(), id.user.ID)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	out := []map[string]any{}
	for _, x := range list {
		out = append(out, map[string]any{"id": x.JTI, "created_at": isoOrEmpty(x.CreatedAt), "last_used_at": isoOrEmpty(x.LastUsedAt),
			"expires_at": isoOrEmpty(x.ExpiresAt), "revoked": !x.RevokedAt.IsZero(), "client_ip": x.ClientIP,
			"current": x.JTI == id.jti})
	}
	writeJSON(w, http.StatusOK, map[string]any{"sessions": out})
}

func (s *Server) handleRevokeSession(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	jti := r.PathValue("jti")
	if storeFailed(w, r, s.db.RevokeSession(r.Context(), jti, rq.id.user.ID), "No such session.") {
		return
	}
	s.cache.markRevoked(jti)
	s.sweepSockets()
	writeJSON(w, http.StatusOK, map[string]any{"message": "Session revoked"})
}

// handleChangePassword changes the caller's password after checking the current one, and ends
// every other session of the account.
func (s *Server) handleChangePassword(w http.ResponseWriter, r *http.Request) {
	f, _, ok := readForm(w, r)
	if !ok {
		return
	}
	if code, problem := s.changePassword(r, reqInfo(r).id, f["current_password"], f["new_password"]); problem != "" {
		writeError(w, r, code, "PASSWORD_NOT_CHANGED", problem)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"message": "Password changed; your other sessions were ended."})
}
