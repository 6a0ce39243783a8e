package legacyimport

import (
	"strings"
	"testing"
	"time"
)

func TestDecideUsers(t *testing.T) {
	u := func(name string, admin bool, groups ...string) User {
		return User{ID: "id-" + name, Username: name, PasswordHash: "$2b$12$x", Admin: admin, Groups: groups}
	}
	tests := []struct {
		name     string
		user     User
		target   Target
		imported bool
		role     string
		owner    bool
		noteHas  string
	}{
		{"the owner", u("boss", true, "owner", "admin"), Target{}, true, "admin", true, ""},
		{"a second owner", u("boss", true, "Owner", "admin"), Target{HasOwner: true}, true, "admin", false, "has one already"},
		{"admin flag", u("alan", true, "user"), Target{}, true, "admin", false, ""},
		{"admin group without the flag", u("alan", false, "admin"), Target{}, true, "admin", false, ""},
		{"built-in role", u("pia", false, "power"), Target{Roles: map[string]bool{"power": true}}, true, "power", false, ""},
		{"custom role present", u("ana", false, "Artists", "user"), Target{Roles: map[string]bool{"artists": true}}, true, "artists", false, ""},
		{"custom role missing", u("ana", false, "artists"), Target{Roles: map[string]bool{"user": true}}, true, "user", false, `role "artists" does not exist`},
		{"no groups", u("nog", false), Target{}, true, "user", false, ""},
		{"exists already, other case", u("Mia", false, "user"), Target{Usernames: map[string]bool{"mia": true}}, false, "", false, "already in"},
		{"guest", u("guest", false, "guest"), Target{}, false, "", false, "is reserved"},
		{"default", u("Default", false, "user"), Target{}, false, "", false, "is reserved"},
		{"invalid name", u("a b", false, "user"), Target{}, false, "", false, "3 to 128 letters"},
		{"too short", u("ab", false, "user"), Target{}, false, "", false, "3 to 128 letters"},
		{"no hash", User{ID: "x", Username: "nohash"}, Target{}, false, "", false, "no password hash"},
		{"no user_id", User{Username: "noid", PasswordHash: "h"}, Target{}, false, "", false, "no user_id"},
		{"MFA on without a secret", User{ID: "m", Username: "mfa_user", PasswordHash: "h", MFAEnabled: true}, Target{}, false, "", false, "no secret is stored"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := Decide(&Dump{Users: []User{tc.user}}, tc.target, time.Now())
			got := p.Users[0]
			if got.Import != tc.imported || got.Role != tc.role || got.Owner != tc.owner || !strings.Contains(got.Note, tc.noteHas) {
				t.Fatalf("got %+v, want import %v role %q owner %v note with %q", got, tc.imported, tc.role, tc.owner, tc.noteHas)
			}
		})
	}
}

// Two users with one user_id: neither is imported (their tokens could not be told apart).
func TestDecideSharedUserID(t *testing.T) {
	d := &Dump{Users: []User{{ID: "same", Username: "aaa", PasswordHash: "h"}, {ID: "same", Username: "bbb", PasswordHash: "h"},
		{ID: "other", Username: "ccc", PasswordHash: "h"}},
		Tokens: []Token{{Hash: strings.Repeat("b", 64), UserID: "same", Label: "ambiguous"}}}
	p := Decide(d, Target{}, time.Now())
	if p.Users[0].Import || p.Users[1].Import || !p.Users[2].Import || len(p.Tokens) != 0 {
		t.Fatalf("%+v, tokens %+v", p.Users, p.Tokens)
	}
}

// Only one owner comes out of a database with two (the original demoted extras at load).
func TestDecideOneOwner(t *testing.T) {
	d := &Dump{Users: []User{
		{ID: "1", Username: "aaa", PasswordHash: "h", Groups: []string{"owner"}},
		{ID: "2", Username: "bbb", PasswordHash: "h", Groups: []string{"owner"}},
	}}
	p := Decide(d, Target{}, time.Now())
	if !p.Users[0].Owner || p.Users[1].Owner || p.Users[1].Role != "admin" {
		t.Fatalf("%+v", p.Users)
	}
}

func TestDecideOtherRows(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	hash := strings.Repeat("a", 64)
	d := &Dump{
		Users: []User{{ID: "u1", Username: "mia", PasswordHash: "h"}, {ID: "u2", Username: "guest", PasswordHash: "h"}},
		Tokens: []Token{
			{Hash: hash, UserID: "u1", Label: "never"},
			{Hash: hash, UserID: "u1", Label: "later", ExpiresAt: now.Add(time.Hour)},
			{Hash: hash, UserID: "u1", Label: "expired", ExpiresAt: now.Add(-time.Second)},
			{Hash: hash, UserID: "u2", Label: "guest's"},
			{Hash: "abc", UserID: "u1", Label: "short"},
			{Hash: hash, UserID: "u1", Username: "MIA", Label: "same name, other case"},
			{Hash: hash, UserID: "u1", Username: "bob", Label: "recorded for bob"},
		},
		Skipped: []string{"API token \"odd\": expiry \"soon\" does not parse"},
		Bans:    []Ban{{IP: "203.0.113.1"}, {IP: "203.0.113.2", ExpiresAt: now.Add(time.Minute)}, {IP: "203.0.113.3", ExpiresAt: now}, {IP: "nope"}},
		Allow:   []string{"10.0.0.0/8", "192.0.2.1", "2001:db8::/32", "10.0.0.0/33", "x"},
		Devices: []string{"d1"},
	}
	p := Decide(d, Target{}, now)
	var labels []string
	for _, tok := range p.Tokens {
		labels = append(labels, tok.Label)
	}
	if strings.Join(labels, ",") != "never,later,same name, other case" {
		t.Errorf("tokens %v", labels)
	}
	if len(p.Bans) != 2 || p.Bans[0].IP != "203.0.113.1" || p.Bans[1].IP != "203.0.113.2" {
		t.Errorf("bans %+v", p.Bans)
	}
	if len(p.Allow) != 3 || p.Allow[1].String() != "192.0.2.1/32" {
		t.Errorf("allow %v", p.Allow)
	}
	skipped := strings.Join(p.Skipped, "\n")
	for _, want := range []string{`"recorded for bob": recorded for "bob", but its user_id is mia's`, `"odd": expiry "soon" does not parse`, `"expired": expired`, `"guest's": its user is not imported`, `"short": not a SHA-256`, `ban of "nope"`, `"10.0.0.0/33"`, `"x"`} {
		if !strings.Contains(skipped, want) {
			t.Errorf("skipped lacks %q:\n%s", want, skipped)
		}
	}
}

func TestParseTime(t *testing.T) {
	want := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, s := range []string{"2026-03-04T05:06:07+00:00", "2026-03-04T07:06:07+02:00", "2026-03-04T05:06:07", "2026-03-04 05:06:07",
		"2026-03-04T05:06:07.000000+00:00", "1772600767", "1772600767.0"} {
		if got := parseTime(s); !got.Equal(want) {
			t.Errorf("parseTime(%q) = %v", s, got)
		}
	}
	for _, s := range []string{"", "soon", "2026-13-01"} {
		if got := parseTime(s); !got.IsZero() {
			t.Errorf("parseTime(%q) = %v, want zero", s, got)
		}
	}
}

func FuzzParseTime(f *testing.F) {
	f.Add("2026-03-04T05:06:07+00:00")
	f.Add("1772600767")
	f.Fuzz(func(t *testing.T, s string) { _ = parseTime(s) })
}
