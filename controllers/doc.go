// Package controllers owns the controllers that reconcile the mss-login resources with the
// users database: the kinds that own rows in it (ComfyRole, ComfyUser, IPRule) and the
// Lockout mirror of its active bans.
//
// Every kind that owns rows (ComfyRole, ComfyUser, IPRule) goes through one generic path,
// reconciler[T] in sqlsync.go: finalizer, apply, status with conditions and
// observedGeneration, Events, a jittered resync that corrects drift, and retry with backoff
// on errors. A kind only supplies a syncer: how to apply a resource to the database and how
// to release its rows on deletion. Decisions (who owns a username or a role name, what to
// write, what a deletion does) are pure functions in ownership.go and the *_decide.go files,
// with table tests.
//
// The Lockout mirror (lockout_mirror.go) runs the other way: it copies active bans from the
// database into Lockout objects, and a finalizer lifts the ban when a person deletes one.
//
// S3Mounts own no rows: their controller is internal/controller/s3mount, their pod webhook
// internal/webhook/v1. Both packages share the condition helper (internal/conditions) and
// the event filter (internal/predicates) with this one.
package controllers
