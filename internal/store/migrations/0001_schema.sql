-- mss-login users database, version 1. One schema for SQLite, PostgreSQL and MySQL/MariaDB.
-- {{autoid}} and {{table}} are filled per backend. Times are UTC Unix milliseconds (BIGINT).
-- Indexed text columns stay at or below 191 characters so MySQL's utf8mb4 index limits hold.

CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name VARCHAR(128) NOT NULL,
  applied_at BIGINT NOT NULL
){{table}};

-- One row per topic; every write to a cached table bumps its topic in the same transaction,
-- so each process notices changes with one cheap read.
CREATE TABLE IF NOT EXISTS change_counters (
  topic VARCHAR(32) PRIMARY KEY,
  version BIGINT NOT NULL
){{table}};

CREATE TABLE IF NOT EXISTS roles (
  name VARCHAR(64) PRIMARY KEY,
  builtin BOOLEAN NOT NULL,
  permissions TEXT NOT NULL,
  ui_flags TEXT NOT NULL,
  owner_ref VARCHAR(191) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
){{table}};

CREATE TABLE IF NOT EXISTS users (
  id VARCHAR(36) PRIMARY KEY,
  username VARCHAR(128) NOT NULL,
  -- lower-cased username: "Admin" and "admin" cannot both exist on any backend
  username_key VARCHAR(128) NOT NULL,
  password_hash VARCHAR(255) NOT NULL DEFAULT '',
  role VARCHAR(64) NOT NULL,
  -- 1 for the owner, NULL for everyone else: the unique index admits one owner
  owner_flag SMALLINT NULL,
  disabled BOOLEAN NOT NULL DEFAULT FALSE,
  mfa_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  totp_secret TEXT NULL,
  totp_last_step BIGINT NULL,
  owner_ref VARCHAR(191) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  password_changed_at BIGINT NULL,
  last_login_at BIGINT NULL
){{table}};
CREATE UNIQUE INDEX users_username ON users (username);
CREATE UNIQUE INDEX users_username_key ON users (username_key);
CREATE UNIQUE INDEX users_owner ON users (owner_flag);

CREATE TABLE IF NOT EXISTS mfa_backup_codes (
  id {{autoid}},
  user_id VARCHAR(36) NOT NULL,
  code_hash CHAR(64) NOT NULL,
  created_at BIGINT NOT NULL,
  used_at BIGINT NULL,
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
){{table}};
CREATE UNIQUE INDEX mfa_backup_codes_user_hash ON mfa_backup_codes (user_id, code_hash);

CREATE TABLE IF NOT EXISTS mfa_challenges (
  id CHAR(64) PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL,
  purpose VARCHAR(16) NOT NULL,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL,
  consumed_at BIGINT NULL,
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
){{table}};
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);

CREATE TABLE IF NOT EXISTS api_tokens (
  id VARCHAR(36) PRIMARY KEY,
  token_hash CHAR(64) NOT NULL,
  user_id VARCHAR(36) NOT NULL,
  label VARCHAR(128) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  last_used_at BIGINT NULL,
  revoked_at BIGINT NULL,
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
){{table}};
CREATE UNIQUE INDEX api_tokens_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_user ON api_tokens (user_id);

CREATE TABLE IF NOT EXISTS sessions (
  jti VARCHAR(64) PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL,
  created_at BIGINT NOT NULL,
  last_used_at BIGINT NOT NULL,
  expires_at BIGINT NULL,
  revoked_at BIGINT NULL,
  client_ip VARCHAR(45) NOT NULL DEFAULT '',
  user_agent VARCHAR(255) NOT NULL DEFAULT '',
  FOREIGN KEY (user_id) REFERENCES users (id) ON DELETE CASCADE
){{table}};
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_revoked ON sessions (revoked_at);

-- Allow/deny rules and bans. source: manual | automatic | resource; owner_ref names the
-- Kubernetes resource that owns a row ('' for none).
CREATE TABLE IF NOT EXISTS ip_rules (
  id {{autoid}},
  cidr VARCHAR(64) NOT NULL,
  action VARCHAR(8) NOT NULL,
  source VARCHAR(16) NOT NULL,
  owner_ref VARCHAR(191) NOT NULL DEFAULT '',
  reason VARCHAR(255) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL
){{table}};
CREATE UNIQUE INDEX ip_rules_key ON ip_rules (source, owner_ref, action, cidr);

CREATE TABLE IF NOT EXISTS locked_devices (
  device_id VARCHAR(191) PRIMARY KEY,
  reason VARCHAR(255) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL,
  expires_at BIGINT NULL
){{table}};

-- Failed logins per scope ('ip' or 'user') and subject, counted within a window.
CREATE TABLE IF NOT EXISTS login_failures (
  scope VARCHAR(8) NOT NULL,
  subject VARCHAR(191) NOT NULL,
  failures INTEGER NOT NULL,
  window_start BIGINT NOT NULL,
  last_failure_at BIGINT NOT NULL,
  PRIMARY KEY (scope, subject)
){{table}};

CREATE TABLE IF NOT EXISTS app_settings (
  name VARCHAR(191) PRIMARY KEY,
  value TEXT NOT NULL,
  encrypted BOOLEAN NOT NULL DEFAULT FALSE,
  updated_at BIGINT NOT NULL
){{table}};

CREATE TABLE IF NOT EXISTS audit_log (
  id {{autoid}},
  at BIGINT NOT NULL,
  actor VARCHAR(128) NOT NULL DEFAULT '',
  action VARCHAR(64) NOT NULL,
  target VARCHAR(191) NOT NULL DEFAULT '',
  client_ip VARCHAR(45) NOT NULL DEFAULT '',
  detail TEXT NOT NULL
){{table}};
CREATE INDEX audit_log_at ON audit_log (at);
