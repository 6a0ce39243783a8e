package authserver

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// BenchmarkAccessDecision measures the one access decision on a snapshot of 10,000 users and 10,000 IP
// rules, against its own first step (the IP decision alone) as the baseline in the same run.
func BenchmarkAccessDecision(b *testing.B) {
	now := time.Now()
	snap := &snapshot{usersByID: map[string]store.User{}, roles: map[string]store.Role{}, tokenByID: map[string]*cachedToken{},
		devices: map[string]time.Time{}}
	for i := range 10000 {
		id := fmt.Sprintf("user-%d", i)
		snap.usersByID[id] = store.User{ID: id, Username: id, Role: roles.User}
	}
	snap.roles[roles.User] = store.Role{Role: roles.Role{Name: roles.User, Permissions: map[string]bool{roles.CanAccessAPI: true,
		roles.CanRun: true}}}
	rules := make([]ipaccess.Rule, 0, 10000)
	for i := range 10000 {
		rules = append(rules, ipaccess.Rule{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(i >> 8), byte(i), 1}), 32), Ban: true,
			ExpiresAt: now.Add(time.Hour)})
	}
	snap.rules = ipaccess.NewRuleSet(rules)
	sess := &session{userID: "user-42", expiresAt: now.Add(time.Hour)}
	sess.lastUsed.Store(now.UnixMilli())
	tok := &cachedToken{APIToken: store.APIToken{ID: "tok-1", UserID: "user-43"}}
	snap.tokenByID[tok.ID] = tok
	pol := policy.New(nil)
	path, _ := policy.Normalize("/api/prompt")
	ip := netip.MustParseAddr("192.0.2.1")
	in := check{ip: ip, device: "device-1", method: "POST", decision: pol.Decide("POST", path), sameOrigin: true, now: now}

	b.Run("baseline-ip-decision-only", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ipaccess.Decide(ipaccess.Input{IP: ip, DeviceID: in.device, Now: now, Rules: snap.rules, Devices: snap.devices})
		}
	})
	b.Run("policy-route", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = pol.Decide("POST", path)
		}
	})
	b.Run("session", func(b *testing.B) {
		b.ReportAllocs()
		c := in
		c.id, c.hasID = identity{jti: "j", sess: sess, user: store.User{ID: "user-42"}}, true
		for b.Loop() {
			if v := decide(snap, ipaccess.Security{}, 30*time.Minute, c); v.status != 0 {
				b.Fatal(v)
			}
		}
	})
	b.Run("api-token", func(b *testing.B) {
		b.ReportAllocs()
		c := in
		c.id, c.hasID = identity{tokenID: tok.ID, token: tok, user: store.User{ID: "user-43"}}, true
		for b.Loop() {
			if v := decide(snap, ipaccess.Security{}, 30*time.Minute, c); v.status != 0 {
				b.Fatal(v)
			}
		}
	})
}
