// Package store is the users database that the operator writes and the auth server reads: one
// schema and one Go API on SQLite (the embedded default), PostgreSQL and MySQL/MariaDB.
//
// It owns every table of that database, its migrations and the encryption of its secret fields,
// one file per table or concern:
//
//	users.go       users: accounts, passwords, roles, the owner flag
//	mfa.go         users.totp_* and mfa_backup_codes: the second factor
//	challenges.go  mfa_challenges: pending MFA steps
//	sessions.go    sessions: login sessions and their revocation
//	tokens.go      api_tokens: API tokens
//	roles.go       roles: built-in and ComfyRole roles
//	grants.go      model_grants: who may use which models
//	listings.go    model_listings: the models ComfyUI and the S3Mounts list
//	prompts.go     prompt_owners: who queued which ComfyUI prompt
//	iprules.go     ip_rules: allow and deny rules
//	bans.go        ip_rules: bans (deny rules for one address)
//	devices.go     locked_devices: device locks
//	failures.go    login_failures: failed-attempt counters and attempt admission
//	settings.go    app_settings: plain and encrypted settings
//	audit.go       audit_log: the audit trail
//	notify.go      notify_cursors, and the audit trail as the notifier reads it
//	versions.go    change_counters: the change counters caches poll
//	reencrypt.go   re-sealing the encrypted fields for a new SECRET_KEY
//	migrate.go     schema_migrations and the migrations (migrations/*.sql)
//	store.go       opening, statements, transactions, errors
//	dialect.go     what differs between the backends
//	sqlite.go      the SQLite file: encryption, permissions, re-keying
//
// All times are stored as UTC Unix milliseconds (BIGINT) on every backend, so that comparisons
// and indexes behave the same everywhere. SQL is written once with '?' placeholders; the dialect
// rewrites it where backends really differ (placeholders, upserts, DDL types).
package store
