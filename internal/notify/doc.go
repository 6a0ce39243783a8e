// Package notify tells the people who run mss-login what happened, through ntfy and signed
// webhooks. Its queue is the audit trail: every event worth a notification is an audit entry
// already (a ban, a new user, a revoked token, an update found by the manager's leader), so a
// request never waits for a notification and nothing is lost when a process dies. Each sink
// reads the trail from its own cursor, held under a lease in the database, so that each event
// is sent once however many replicas run; a failed delivery is retried with backoff, and an
// event still undelivered after MaxAge is dropped and counted. internal/notify/events says
// which entries become which notifications.
package notify
