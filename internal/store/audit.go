package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// AuditEvent is one line of the audit trail. Detail never holds a password, token or secret.
type AuditEvent struct {
	ID       int64     `json:"id"`
	At       time.Time `json:"at"`
	Actor    string    `json:"actor"`  // username, "operator", "system", or "" for anonymous
	Action   string    `json:"action"` // e.g. login.success, login.failure, ban.created, token.revoked
	Target   string    `json:"target"`
	ClientIP string    `json:"client_ip"`
	Detail   string    `json:"detail"`
}

// Audit appends an event to the audit trail.
func (s *Store) Audit(ctx context.Context, e AuditEvent) error {
	if e.Action == "" {
		return errors.New("audit: an action is required")
	}
	if e.At.IsZero() {
		e.At = now()
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO audit_log (at, actor, action, target, client_ip, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		e.At.UnixMilli(), truncate(e.Actor, 128), truncate(e.Action, 64), truncate(e.Target, 191), truncate(e.ClientIP, 45), e.Detail)
	return s.wrap("audit", err)
}

// AuditQuery selects audit events, newest first. Empty fields select everything.
type AuditQuery struct {
	Actor    string    // exact
	Action   string    // exact, or a prefix when it ends in "*" ("login.*")
	ClientIP string    // exact
	Since    time.Time // at or after
	Until    time.Time // before
	Before   int64     // the cursor: events older than this id (0: from the newest)
	Limit    int       // at most this many (default 100, at most 1,000)
}

// QueryAudit returns the events q selects, newest first, and the cursor of the next page (0
// when there is none).
func (s *Store) QueryAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, int64, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	q.Limit = min(q.Limit, 1000)
	where, args := []string{"1 = 1"}, []any{}
	add := func(cond string, v any) { where, args = append(where, cond), append(args, v) }
	if q.Actor != "" {
		add("actor = ?", q.Actor)
	}
	if prefix, ok := strings.CutSuffix(q.Action, "*"); ok {
		// LIKE with the pattern's own wildcards escaped: "_" is common in action names.
		add(`action LIKE ? ESCAPE '!'`, strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(prefix)+"%")
	} else if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.ClientIP != "" {
		add("client_ip = ?", q.ClientIP)
	}
	if !q.Since.IsZero() {
		add("at >= ?", q.Since.UnixMilli())
	}
	if !q.Until.IsZero() {
		add("at < ?", q.Until.UnixMilli())
	}
	if q.Before > 0 {
		add("id < ?", q.Before)
	}
	args = append(args, q.Limit+1)
	// Not prepared: the statement's shape changes with the filters.
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, at, actor, action, target, client_ip, detail FROM audit_log WHERE `+
		strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`), args...)
	out, err := s.scanAudit(rows, err)
	if err != nil {
		return nil, 0, err
	}
	var next int64
	if len(out) > q.Limit {
		out = out[:q.Limit]
		next = out[len(out)-1].ID
	}
	return out, next, nil
}

// scanAudit reads the rows of a SELECT of an audit entry's columns (err: the query's own).
func (s *Store) scanAudit(rows *sql.Rows, err error) ([]AuditEvent, error) {
	if err != nil {
		return nil, s.wrap("read audit log", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		e, err := scanAuditEvent(rows)
		if err != nil {
			return nil, s.wrap("read audit log", err)
		}
		out = append(out, e)
	}
	return out, s.wrap("read audit log", rows.Err())
}

// scanAuditEvent reads id, at, actor, action, target, client_ip, detail.
func scanAuditEvent(sc scanner) (AuditEvent, error) {
	var e AuditEvent
	var at int64
	err := sc.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.ClientIP, &e.Detail)
	e.At = time.UnixMilli(at).UTC()
	return e, err
}

// UserChangeAction names the audit action of a write to a user row (prev nil: created), so that
// the API, the console and the operator name the same change the same way; "" when nothing a
// notification is about changed.
func UserChangeAction(prev *User, now User) string {
	switch {
	case prev == nil:
		return "user.created"
	case prev.Role != now.Role:
		return "user.role_changed"
	case now.Disabled && !prev.Disabled:
		return "user.disabled"
	case !now.Disabled && prev.Disabled:
		return "user.enabled"
	}
	return ""
}

// AuditLog returns the newest limit events, newest first.
func (s *Store) AuditLog(ctx context.Context, limit int) ([]AuditEvent, error) {
	out, _, err := s.QueryAudit(ctx, AuditQuery{Limit: limit})
	return out, err
}

// PruneAudit deletes the events older than before (audit_retention_days) and says how many.
func (s *Store) PruneAudit(ctx context.Context, before time.Time) (int64, error) {
	res, err := s.exec(ctx, s.db, `DELETE FROM audit_log WHERE at < ?`, before.UnixMilli())
	if err != nil {
		return 0, s.wrap("prune audit log", err)
	}
	n, _ := res.RowsAffected()
	return n, nil
}
