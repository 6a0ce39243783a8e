-- Notifications (internal/notify) read the audit trail: each sink from its own cursor, which one
-- process at a time holds under a lease, so that each event is sent once however many replicas
-- run. The index serves the failed-login burst count (per address and window).
CREATE TABLE IF NOT EXISTS notify_cursors (
  sink VARCHAR(191) NOT NULL PRIMARY KEY,
  cursor_id BIGINT NOT NULL,
  holder VARCHAR(64) NOT NULL DEFAULT '',
  lease_until BIGINT NOT NULL DEFAULT 0
){{table}};
CREATE INDEX audit_log_action_ip ON audit_log (action, client_ip, at);
