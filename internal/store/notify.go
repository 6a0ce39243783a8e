package store

import (
	"context"
	"time"
)

// AuditAfter lists up to limit audit entries with an id above after, oldest first: the
// notifier's reading of the trail from its cursor.
func (s *Store) AuditAfter(ctx context.Context, after int64, limit int) ([]AuditEvent, error) {
	return list(ctx, s, "read audit log", scanAuditEvent, `SELECT id, at, actor, action, target, client_ip, detail FROM audit_log
		WHERE id > ? ORDER BY id LIMIT ?`, after, max(1, min(limit, 1000)))
}

// CountAudit counts the entries of action from clientIP at or after since with an id up to
// upTo: how many failed logins an address had in a window when a given one was written.
func (s *Store) CountAudit(ctx context.Context, action, clientIP string, since time.Time, upTo int64) (int, error) {
	var n int
	err := s.queryRow(ctx, s.db, `SELECT COUNT(*) FROM audit_log WHERE action = ? AND client_ip = ? AND at >= ? AND id <= ?`,
		action, clientIP, since.UnixMilli(), upTo).Scan(&n)
	return n, s.wrap("count audit log", err)
}

// HoldNotifyCursor takes or renews holder's lease on a sink's cursor until `until` and returns
// the cursor; held is false while another process holds a live lease. A sink seen for the
// first time starts at the newest entry: history is not sent.
func (s *Store) HoldNotifyCursor(ctx context.Context, sink, holder string, now, until time.Time) (cursor int64, held bool, err error) {
	var newest int64
	if err := s.queryRow(ctx, s.db, `SELECT COALESCE(MAX(id), 0) FROM audit_log`).Scan(&newest); err != nil {
		return 0, false, s.wrap("read audit log", err)
	}
	if _, err := s.exec(ctx, s.db, s.d.insertIgnore(`INSERT INTO notify_cursors (sink, cursor_id, holder, lease_until) VALUES (?, ?, '', 0)`, "sink"),
		sink, newest); err != nil {
		return 0, false, s.wrap("create notify cursor", err)
	}
	res, err := s.exec(ctx, s.db, `UPDATE notify_cursors SET holder = ?, lease_until = ? WHERE sink = ? AND (holder = ? OR lease_until < ?)`,
		holder, until.UnixMilli(), sink, holder, now.UnixMilli())
	if err != nil {
		return 0, false, s.wrap("hold notify cursor", err)
	}
	var h string
	if err := s.queryRow(ctx, s.db, `SELECT cursor_id, holder FROM notify_cursors WHERE sink = ?`, sink).Scan(&cursor, &h); err != nil {
		return 0, false, s.wrap("read notify cursor", err)
	}
	// MySQL counts a row whose values did not change as unaffected: the holder column says.
	n, _ := res.RowsAffected()
	return cursor, n == 1 || h == holder, nil
}

// AdvanceNotifyCursor moves a sink's cursor forward while holder holds it.
func (s *Store) AdvanceNotifyCursor(ctx context.Context, sink, holder string, cursor int64) error {
	_, err := s.exec(ctx, s.db, `UPDATE notify_cursors SET cursor_id = ? WHERE sink = ? AND holder = ? AND cursor_id < ?`,
		cursor, sink, holder, cursor)
	return s.wrap("advance notify cursor", err)
}
