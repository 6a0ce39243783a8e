package events_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/notify/events"
)

const typedPassword = "Hunter2-typed-in-the-name-field"

func TestFromAudit(t *testing.T) {
	at := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		e          events.Entry
		kind, text string
	}{
		{events.Entry{ID: 7, Action: "ban.created", Target: "203.0.113.5", ClientIP: "203.0.113.5", Detail: "10 failed attempts"}, events.IPBanned, "203.0.113.5 is banned (10 failed attempts)."},
		{events.Entry{ID: 8, Action: "user.created", Actor: "admin", Target: "bob", ClientIP: "192.0.2.1"}, events.UserCreated, "admin: user.created bob from 192.0.2.1."},
		{events.Entry{ID: 9, Action: "token.revoked", Actor: "bob", Target: "tok-1"}, events.TokenRevoked, "bob: token.revoked tok-1."},
		{events.Entry{ID: 10, Action: "login.failure", Actor: typedPassword, ClientIP: "192.0.2.9"}, events.LoginFailedBurst, "Repeated failed logins from 192.0.2.9."},
		{events.Entry{ID: 11, Action: "update.available", Actor: "operator", Target: "1.4.0", Detail: "1.4.0, running 1.3.0: https://x"}, events.UpdateAvailable, "A new mss-login release is available (1.4.0, running 1.3.0: https://x)."},
		{events.Entry{ID: 12, Action: "s3mount.failing", Target: "comfy/models", Detail: "BucketUnreachable: no such bucket"}, events.S3SyncFailing, "S3Mount comfy/models cannot sync (BucketUnreachable: no such bucket)."},
		{events.Entry{ID: 13, Action: "mfa.reset_all", Actor: "recovery", ClientIP: "10.0.0.1"}, events.RecoveryUsed, "Recovery mode was used from 10.0.0.1."},
		{events.Entry{ID: 14, Action: "role.updated", Actor: "admin", Target: "artists"}, events.AdminChange, "admin: role.updated artists."},
	} {
		c.e.At = at
		ev, ok := events.FromAudit(c.e)
		if !ok || ev.Kind != c.kind || ev.Message != c.text || ev.ID != "audit-"+strconv.FormatInt(c.e.ID, 10) {
			t.Errorf("%s: %+v %v, want %s %q", c.e.Action, ev, ok, c.kind, c.text)
		}
		if strings.Contains(fmt.Sprintf("%+v", ev), typedPassword) {
			t.Errorf("%s: what was typed into a failed login reaches the notification: %+v", c.e.Action, ev)
		}
	}
	for _, a := range []string{"mfa.failure", "password.changed", "mfa.backup_codes", "user.imported", ""} {
		if _, ok := events.FromAudit(events.Entry{Action: a}); ok {
			t.Errorf("%q is notified", a)
		}
	}
	def := strings.Join(events.DefaultKinds(), " ")
	if strings.Contains(def, events.UserLogin) || strings.Contains(def, events.UserLogout) || !strings.Contains(def, events.IPBanned) {
		t.Errorf("default kinds %s", def)
	}
}

func TestBurst(t *testing.T) {
	for n, want := range map[int]bool{1: false, 2: false, 3: true, 4: false, 1000: false} {
		if events.Burst(n, 3) != want {
			t.Errorf("Burst(%d, 3) = %v", n, !want)
		}
	}
	at := time.Date(2026, 12, 3, 10, 7, 30, 0, time.UTC)
	if got := events.WindowStart(at, 15*time.Minute); !got.Equal(time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)) {
		t.Errorf("window start %v", got)
	}
}
