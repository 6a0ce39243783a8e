package webhookcert

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"
)

func TestRenewalReason(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	names := []string{"mss-login-webhook.mss-login-system.svc"}
	ips := []net.IP{net.ParseIP("127.0.0.1")}
	good, err := generate(names, ips, now, 365*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := generate(names, ips, now, 365*24*time.Hour)
	renew := 120 * 24 * time.Hour
	tests := []struct {
		name  string
		b     bundle
		names []string
		ips   []net.IP
		at    time.Time
		want  string
	}{
		{"good", good, names, ips, now, ""},
		{"empty", bundle{}, names, ips, now, "no certificate"},
		{"garbage", bundle{CA: []byte("x"), Cert: []byte("y"), Key: []byte("z")}, names, ips, now, "cannot be read"},
		{"within the renewal window", good, names, ips, now.Add(250 * 24 * time.Hour), "expires"},
		{"expired", good, names, ips, now.Add(400 * 24 * time.Hour), "expires"},
		{"another name", good, []string{"other.svc"}, ips, now, "does not name other.svc"},
		{"another IP", good, names, []net.IP{net.ParseIP("10.0.0.1")}, now, "does not name 10.0.0.1"},
		{"CA of another pair", bundle{CA: other.CA, Cert: good.Cert, Key: good.Key}, names, ips, now, "not signed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := renewalReason(tc.b, tc.names, tc.ips, tc.at, renew)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("renewalReason = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCABundleKeepsPreviousCAWhileValid(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	old, _ := generate([]string{"a"}, nil, now, 24*time.Hour)
	nb, _ := generate([]string{"a"}, nil, now, 24*time.Hour)
	nb.PrevCA = old.CA
	if got := nb.caBundle(now); !bytes.Equal(got, append(bytes.Clone(nb.CA), old.CA...)) {
		t.Fatal("the bundle during a renewal must hold the new and the previous CA")
	}
	if got := nb.caBundle(now.Add(48 * time.Hour)); !bytes.Equal(got, nb.CA) {
		t.Fatal("an expired previous CA must leave the bundle")
	}
}
