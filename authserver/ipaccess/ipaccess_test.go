package ipaccess

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"
)

func pfx(s ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, x := range s {
		out = append(out, netip.MustParsePrefix(x))
	}
	return out
}

func TestClientIP(t *testing.T) {
	r := Resolver{Trusted: pfx("10.0.0.0/8", "fd00::/8")}
	cases := []struct {
		name, peer string
		xff        []string
		cf         string
		want       string
	}{
		{"no proxy trusted: XFF ignored", "203.0.113.5", []string{"1.2.3.4"}, "", "203.0.113.5"},
		{"trusted proxy: rightmost untrusted hop", "10.0.0.2", []string{"198.51.100.7"}, "", "198.51.100.7"},
		{"spoofed left entries are ignored", "10.0.0.2", []string{"127.0.0.1, 198.51.100.7"}, "", "198.51.100.7"},
		{"chain of trusted proxies", "10.0.0.2", []string{"198.51.100.7, 10.1.1.1", "10.2.2.2"}, "", "198.51.100.7"},
		{"all hops trusted: leftmost", "10.0.0.2", []string{"10.3.3.3"}, "", "10.3.3.3"},
		{"garbage stops at last trusted hop", "10.0.0.2", []string{"not-an-ip"}, "", "10.0.0.2"},
		{"no XFF from a trusted peer", "10.0.0.2", nil, "", "10.0.0.2"},
		{"cloudflare header needs cloudflare_proxy", "10.0.0.2", nil, "192.0.2.9", "10.0.0.2"},
		{"IPv6 and mapped IPv4", "[fd00::1]", []string{"::ffff:198.51.100.8"}, "", "198.51.100.8"},
	}
	for _, c := range cases {
		h := http.Header{}
		for _, v := range c.xff {
			h.Add("X-Forwarded-For", v)
		}
		if c.cf != "" {
			h.Set("CF-Connecting-IP", c.cf)
		}
		peer := netip.MustParseAddr(trimBrackets(c.peer))
		if got := r.ClientIP(peer, h); got.String() != c.want {
			t.Errorf("%s: got %s, want %s", c.name, got, c.want)
		}
	}
	cf := Resolver{Trusted: pfx("10.0.0.0/8"), Cloudflare: true}
	h := http.Header{"Cf-Connecting-Ip": {"192.0.2.9"}}
	if got := cf.ClientIP(netip.MustParseAddr("10.0.0.2"), h); got.String() != "192.0.2.9" {
		t.Errorf("cloudflare from trusted peer: %s", got)
	}
	if got := cf.ClientIP(netip.MustParseAddr("203.0.113.1"), h); got.String() != "203.0.113.1" {
		t.Errorf("cloudflare header from an untrusted peer was believed: %s", got)
	}
}

func trimBrackets(s string) string {
	if len(s) > 1 && s[0] == '[' {
		return s[1 : len(s)-1]
	}
	return s
}

func TestDecide(t *testing.T) {
	now := time.Now()
	banned := netip.MustParseAddr("198.51.100.9")
	rules := NewRuleSet([]Rule{
		{Prefix: netip.PrefixFrom(banned, 32), Ban: true, ExpiresAt: now.Add(time.Hour)},
		{Prefix: netip.MustParsePrefix("198.51.100.10/32"), Ban: true, ExpiresAt: now.Add(-time.Hour)}, // expired
		{Prefix: netip.MustParsePrefix("203.0.113.0/24")},                                              // deny rule
		{Prefix: netip.MustParsePrefix("2001:db8::/32")},
	})
	allowList := NewRuleSet([]Rule{{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Allow: true}})
	cases := []struct {
		name string
		in   Input
		want Verdict
	}{
		{"plain", Input{IP: netip.MustParseAddr("192.0.2.1"), Rules: rules}, Allowed},
		{"invalid", Input{Rules: rules}, DeniedInvalidIP},
		{"banned", Input{IP: banned, Rules: rules}, DeniedBanned},
		{"expired ban", Input{IP: netip.MustParseAddr("198.51.100.10"), Rules: rules}, Allowed},
		{"deny rule", Input{IP: netip.MustParseAddr("203.0.113.77"), Rules: rules}, DeniedRule},
		{"deny rule v6", Input{IP: netip.MustParseAddr("2001:db8::1"), Rules: rules}, DeniedRule},
		{"locked device", Input{IP: netip.MustParseAddr("192.0.2.1"), DeviceID: "d1", Rules: rules,
			Devices: map[string]time.Time{"d1": now.Add(time.Hour)}}, DeniedDevice},
		{"expired device lock", Input{IP: netip.MustParseAddr("192.0.2.1"), DeviceID: "d1", Rules: rules,
			Devices: map[string]time.Time{"d1": now.Add(-time.Hour)}}, Allowed},
		{"unlock_ips beats a ban", Input{IP: banned, Rules: rules, Security: Security{UnlockIPs: pfx("198.51.100.9/32")}}, Allowed},
		{"unlock_devices beats a lock", Input{IP: netip.MustParseAddr("192.0.2.1"), DeviceID: "d1", Rules: rules,
			Devices: map[string]time.Time{"d1": {}}, Security: Security{UnlockDevices: map[string]bool{"d1": true}}}, Allowed},
		{"disable_lockout_until lifts bans", Input{IP: banned, Rules: rules, Security: Security{DisableLockoutUntil: now.Add(time.Minute)}}, Allowed},
		{"disable_lockout_until keeps deny rules", Input{IP: netip.MustParseAddr("203.0.113.1"), Rules: rules,
			Security: Security{DisableLockoutUntil: now.Add(time.Minute)}}, DeniedRule},
		{"disable_lockout_until in the past", Input{IP: banned, Rules: rules, Security: Security{DisableLockoutUntil: now.Add(-time.Minute)}}, DeniedBanned},
		{"allow-list hit", Input{IP: netip.MustParseAddr("192.0.2.5"), Rules: allowList}, Allowed},
		{"allow-list miss", Input{IP: netip.MustParseAddr("192.0.3.5"), Rules: allowList}, DeniedNotAllowListed},
		{"mapped address", Input{IP: netip.MustParseAddr("::ffff:198.51.100.9"), Rules: rules}, DeniedBanned},
	}
	for _, c := range cases {
		c.in.Now = now
		if got := Decide(c.in); got != c.want {
			t.Errorf("%s: %s, want %s", c.name, got, c.want)
		}
	}
}

func TestCooldown(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, 0}, {2, 0}, {3, time.Minute}, {5, time.Minute}, {6, 90 * time.Second}, {9, 5 * time.Minute}, {50, 5 * time.Minute}} {
		if got := Cooldown(c.n); got != c.want {
			t.Errorf("Cooldown(%d) = %v, want %v", c.n, got, c.want)
		}
	}
	now := time.Now()
	if got := CooldownRemaining(3, now.Add(-50*time.Second), now); got != 10*time.Second {
		t.Errorf("remaining %v", got)
	}
	if got := CooldownRemaining(3, now.Add(-2*time.Minute), now); got != 0 {
		t.Errorf("remaining after the cooldown %v", got)
	}
}

func FuzzClientIP(f *testing.F) {
	f.Add("10.0.0.2", "1.2.3.4, 10.0.0.3")
	f.Add("10.0.0.2", " ,, ::ffff:1.2.3.4,fe80::1%eth0")
	r := Resolver{Trusted: pfx("10.0.0.0/8")}
	f.Fuzz(func(t *testing.T, peer, xff string) {
		p, err := netip.ParseAddr(peer)
		if err != nil {
			return
		}
		got := r.ClientIP(p, http.Header{"X-Forwarded-For": {xff}})
		// The answer is the peer, or a hop the trusted peer reported; never invalid.
		if !got.IsValid() {
			t.Fatalf("invalid client IP for peer %s, XFF %q", peer, xff)
		}
		if !r.Trusts(p) && got != p.Unmap() {
			t.Fatalf("XFF believed from untrusted peer %s: %s", peer, got)
		}
	})
}

// BenchmarkDecide: the IP decision with 10,000 rules (target ≤ 2 µs), against the decision
// with one rule as the baseline.
func BenchmarkDecide(b *testing.B) {
	build := func(n int) *RuleSet {
		rules := make([]Rule, 0, n)
		for i := range n {
			bits := []int{32, 24, 16, 28}[i%4]
			a := netip.AddrFrom4([4]byte{byte(11 + i%200), byte(i / 200), byte(i), 0})
			rules = append(rules, Rule{Prefix: netip.PrefixFrom(a, bits).Masked(), Ban: i%3 == 0})
			if i%5 == 0 {
				rules = append(rules, Rule{Prefix: netip.MustParsePrefix(fmt.Sprintf("2001:db8:%x::/48", i))})
			}
		}
		return NewRuleSet(rules)
	}
	ip := netip.MustParseAddr("192.0.2.44")
	now := time.Now()
	for _, n := range []int{1, 10000} {
		name := fmt.Sprintf("rules-%d", n)
		if n == 1 {
			name = "baseline-1-rule"
		}
		rs := build(n)
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if Decide(Input{IP: ip, Now: now, Rules: rs, DeviceID: "dev"}) != Allowed {
					b.Fatal("denied")
				}
			}
		})
	}
}
