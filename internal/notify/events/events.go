// Package events says which audit entries become notifications and what they say: the kinds
// (`ntfy.enabled_events`, a webhook's `events`), the one-line messages, and the failed-login
// burst rule. Pure functions, no I/O; internal/notify delivers what they make.
package events

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Entry is an audit entry (store.AuditEvent converts to it).
type Entry struct {
	ID       int64
	At       time.Time
	Actor    string
	Action   string
	Target   string
	ClientIP string
	Detail   string
}

// Event is one notification. Nothing in it is secret: it is built from an audit entry, whose
// detail never holds a password, token or key, and never from the name typed into a failed
// login (a password typed into the wrong field would otherwise reach a phone).
type Event struct {
	ID       string    `json:"id"` // stable across retries and replicas: "audit-<id>"
	Kind     string    `json:"kind"`
	At       time.Time `json:"time"`
	Actor    string    `json:"actor,omitempty"`
	Target   string    `json:"target,omitempty"`
	Address  string    `json:"address,omitempty"`
	Title    string    `json:"title"`
	Message  string    `json:"message"`
	Priority int       `json:"priority"` // ntfy's 1 (min) … 5 (urgent)
	Tags     []string  `json:"tags,omitempty"`
}

// The kinds of event, as `ntfy.enabled_events` and a webhook's `events` name them.
const (
	LoginFailedBurst = "login_failed_burst"
	IPBanned         = "ip_banned"
	DeviceLocked     = "device_locked"
	BanLifted        = "ban_lifted"
	UserCreated      = "user_created"
	UserDisabled     = "user_disabled"
	UserEnabled      = "user_enabled"
	UserDeleted      = "user_deleted"
	UserRoleChanged  = "user_role_changed"
	TokenCreated     = "token_created"
	TokenRevoked     = "token_revoked"
	MFAEnabled       = "mfa_enabled"
	MFADisabled      = "mfa_disabled"
	MFAReset         = "mfa_reset"
	RecoveryUsed     = "recovery_mode_used"
	UpdateAvailable  = "update_available"
	S3SyncFailing    = "s3_sync_failing"
	AdminChange      = "admin_change"
	ModelDownloaded  = "model_downloaded"
	DownloadFailed   = "model_download_failed"
	UserLogin        = "user_login"
	UserLogout       = "user_logout"
)

// kind is what an audit action becomes.
type kind struct {
	name     string
	title    string
	priority int
	tags     []string
}

// actions maps audit actions to notifications. An action not here is not notified, except that
// any other change an admin makes is an admin_change (changedByAdmin).
var actions = map[string]kind{
	"login.failure":         {LoginFailedBurst, "Failed logins", 4, []string{"warning"}},
	"ban.created":           {IPBanned, "Address banned", 4, []string{"no_entry"}},
	"device.locked":         {DeviceLocked, "Device locked", 4, []string{"no_entry"}},
	"ban.lifted":            {BanLifted, "Ban lifted", 3, []string{"unlock"}},
	"lockout.lifted":        {BanLifted, "Ban lifted", 3, []string{"unlock"}},
	"device.unlocked":       {BanLifted, "Device unlocked", 3, []string{"unlock"}},
	"user.created":          {UserCreated, "User created", 3, []string{"bust_in_silhouette"}},
	"user.disabled":         {UserDisabled, "User disabled", 3, []string{"bust_in_silhouette"}},
	"user.enabled":          {UserEnabled, "User enabled", 3, []string{"bust_in_silhouette"}},
	"user.deleted":          {UserDeleted, "User deleted", 3, []string{"bust_in_silhouette"}},
	"user.role_changed":     {UserRoleChanged, "Role changed", 3, []string{"bust_in_silhouette"}},
	"token.created":         {TokenCreated, "API token created", 3, []string{"key"}},
	"token.revoked":         {TokenRevoked, "API token revoked", 3, []string{"key"}},
	"mfa.enabled":           {MFAEnabled, "MFA enabled", 3, []string{"lock"}},
	"mfa.disabled":          {MFADisabled, "MFA disabled", 4, []string{"warning"}},
	"mfa.reset":             {MFAReset, "MFA reset", 4, []string{"warning"}},
	"mfa.reset_all":         {RecoveryUsed, "Recovery mode used", 5, []string{"rotating_light"}},
	"recovery.used":         {RecoveryUsed, "Recovery mode used", 5, []string{"rotating_light"}},
	"update.available":      {UpdateAvailable, "Update available", 3, []string{"package"}},
	"s3mount.failing":       {S3SyncFailing, "S3 sync failing", 4, []string{"warning"}},
	"model_download.done":   {ModelDownloaded, "Model downloaded", 3, []string{"package"}},
	"model_download.failed": {DownloadFailed, "Model download failed", 4, []string{"warning"}},
	"login.success":         {UserLogin, "Login", 2, nil},
	"logout":                {UserLogout, "Logout", 2, nil},
	"user.updated":          {AdminChange, "Admin change", 3, []string{"wrench"}},
	"role.updated":          {AdminChange, "Admin change", 3, []string{"wrench"}},
	"password.reset":        {AdminChange, "Admin change", 3, []string{"wrench"}},
	"model_grant.added":     {AdminChange, "Admin change", 3, []string{"wrench"}},
	"model_grant.removed":   {AdminChange, "Admin change", 3, []string{"wrench"}},
	"ip_rule.added":         {AdminChange, "Admin change", 3, []string{"wrench"}},
	"ip_rule.removed":       {AdminChange, "Admin change", 3, []string{"wrench"}},
}

// Kinds lists every kind, for validation and docs.
func Kinds() []string {
	seen := map[string]bool{}
	var out []string
	for _, k := range actions {
		if !seen[k.name] {
			seen[k.name] = true
			out = append(out, k.name)
		}
	}
	slices.Sort(out)
	return out
}

// DefaultKinds are sent when a sink names no events: everything but logins and logouts, which
// would drown the rest.
func DefaultKinds() []string {
	return slices.DeleteFunc(Kinds(), func(k string) bool { return k == UserLogin || k == UserLogout })
}

// KindOf is the notification kind of an audit action, "" when it is not notified.
func KindOf(action string) string { return actions[action].name }

// FromAudit turns an audit entry into its notification. A failed login is only a candidate:
// the burst rule (Burst) decides whether it is sent.
func FromAudit(e Entry) (Event, bool) {
	k, ok := actions[e.Action]
	if !ok {
		return Event{}, false
	}
	ev := Event{ID: "audit-" + strconv.FormatInt(e.ID, 10), Kind: k.name, At: e.At.UTC(), Title: "mss-login: " + k.title,
		Priority: k.priority, Tags: k.tags, Address: cleanAddress(e.ClientIP)}
	if e.Action != "login.failure" { // the "actor" of a failed login is whatever was typed
		ev.Actor, ev.Target = e.Actor, e.Target
	}
	ev.Message = message(e, ev)
	return ev, true
}

func cleanAddress(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return ""
}

// message is the one line a person reads on their phone.
func message(e Entry, ev Event) string {
	who := func(s string) string {
		if s == "" {
			return "someone"
		}
		return s
	}
	detail := ""
	if d := strings.TrimSpace(e.Detail); d != "" {
		detail = " (" + oneLine(d, 200) + ")"
	}
	from := ""
	if ev.Address != "" {
		from = " from " + ev.Address
	}
	switch e.Action {
	case "login.failure":
		return fmt.Sprintf("Repeated failed logins%s.", from)
	case "ban.created":
		return fmt.Sprintf("%s is banned%s.", who(e.Target), detail)
	case "device.locked":
		return fmt.Sprintf("A device is locked%s.", detail)
	case "ban.lifted", "lockout.lifted", "device.unlocked":
		return fmt.Sprintf("%s lifted the ban on %s%s.", who(e.Actor), who(e.Target), detail)
	case "update.available":
		return fmt.Sprintf("A new mss-login release is available%s.", detail)
	case "s3mount.failing":
		return fmt.Sprintf("S3Mount %s cannot sync%s.", who(e.Target), detail)
	case "mfa.reset_all", "recovery.used":
		return fmt.Sprintf("Recovery mode was used%s%s.", from, detail)
	case "login.success", "logout", "mfa.enabled", "mfa.disabled":
		return fmt.Sprintf("%s: %s%s%s.", who(e.Actor), e.Action, from, detail)
	}
	target := ""
	if e.Target != "" {
		target = " " + e.Target
	}
	return fmt.Sprintf("%s: %s%s%s%s.", who(e.Actor), e.Action, target, detail, from)
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		s = s[:max] + "…"
	}
	return s
}

// Burst decides whether the nth failed login (counting from 1) of an address within the
// current window opens a burst: exactly one notification per address per window, whichever
// replica sees it. Windows are aligned to multiples of window since the epoch.
func Burst(n, threshold int) bool { return n == threshold }

// WindowStart is the start of the burst window holding t.
func WindowStart(t time.Time, window time.Duration) time.Time {
	return t.Truncate(window)
}
