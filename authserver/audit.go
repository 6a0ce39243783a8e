package authserver

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/mss-login/mss-login/internal/store"
)

// handleAudit is GET /mss-login/api/audit: the audit trail, newest first, for admins. Filters:
// user, action (exact, or a prefix ending in "*"), address, since and until (RFC 3339); limit
// (at most 1,000) and cursor (the next_cursor of the page before).
func (s *Server) handleAudit(w http.ResponseWriter, r *http.Request) {
	q, field, ok := auditQuery(r)
	if !ok {
		writeError(w, r, http.StatusBadRequest, "BAD_QUERY", field)
		return
	}
	events, next, err := s.db.QueryAudit(r.Context(), q)
	if err != nil {
		dbUnavailable(w, r)
		return
	}
	if events == nil {
		events = []store.AuditEvent{}
	}
	out := map[string]any{"events": events}
	if next > 0 {
		out["next_cursor"] = strconv.FormatInt(next, 10)
	}
	writeJSON(w, http.StatusOK, out)
}

// auditQuery reads the filters of an audit request; on a bad one it names the field.
func auditQuery(r *http.Request) (store.AuditQuery, string, bool) {
	v := r.URL.Query()
	q := store.AuditQuery{Actor: v.Get("user"), Action: v.Get("action"), ClientIP: v.Get("address")}
	for _, t := range []struct {
		name string
		into *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			at, err := time.Parse(time.RFC3339, s)
			if err != nil { // a browser's datetime-local field: minutes, no zone (the console says UTC)
				at, err = time.Parse("2006-01-02T15:04", s)
			}
			if err != nil {
				return q, t.name + ": a time as RFC 3339 (2026-12-03T10:00:00Z)", false
			}
			*t.into = at
		}
	}
	for _, n := range []struct {
		name string
		into func(int64)
		max  int64
	}{{"limit", func(x int64) { q.Limit = int(x) }, 1000}, {"cursor", func(x int64) { q.Before = x }, 1 << 62}} {
		if s := v.Get(n.name); s != "" {
			x, err := strconv.ParseInt(s, 10, 64)
			if err != nil || x < 1 || x > n.max {
				return q, n.name + ": a whole number from 1 to " + strconv.FormatInt(n.max, 10), false
			}
			n.into(x)
		}
	}
	return q, "", true
}

// pruneAudit deletes the audit events older than audit_retention_days (0: keeps them all). Every
// replica may run it: the delete is the same.
func (s *Server) pruneAudit(ctx context.Context) {
	if s.cfg.AuditRetentionDays <= 0 {
		return
	}
	n, err := s.db.PruneAudit(ctx, s.now().Add(-time.Duration(s.cfg.AuditRetentionDays)*24*time.Hour))
	switch {
	case err != nil:
		s.log.Warn("pruning the audit log failed", "error", err)
	case n > 0:
		s.log.Info("audit log pruned", "events", n, "older_than_days", s.cfg.AuditRetentionDays)
	}
}
