package controllers

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

func TestDecideOwnership(t *testing.T) {
	const me, other = "ComfyUser/a/me", "ComfyUser/a/other"
	for _, tc := range []struct {
		name    string
		in      ownershipInputs
		allowed bool
		adopt   bool
		reason  string
	}{
		{"no row, no rival", ownershipInputs{MyRef: me, WinnerRef: me}, true, false, ""},
		{"no row, older rival", ownershipInputs{MyRef: me, WinnerRef: other}, false, false, "Conflict"},
		{"my row", ownershipInputs{MyRef: me, RowExists: true, RowOwnerRef: me, WinnerRef: other}, true, false, ""},
		{"row of a live other", ownershipInputs{MyRef: me, RowExists: true, RowOwnerRef: other, WinnerRef: me}, false, false, "OwnedByOther"},
		{"row of a gone other, no adopt", ownershipInputs{MyRef: me, RowExists: true, RowOwnerRef: other, RowOwnerGone: true, WinnerRef: me}, false, false, "NotAdopted"},
		{"row of a gone other, adopt", ownershipInputs{MyRef: me, RowExists: true, RowOwnerRef: other, RowOwnerGone: true, Adopt: true, WinnerRef: me}, true, true, ""},
		{"unowned row, no adopt", ownershipInputs{MyRef: me, RowExists: true, WinnerRef: me}, false, false, "NotAdopted"},
		{"unowned row, adopt", ownershipInputs{MyRef: me, RowExists: true, Adopt: true, WinnerRef: me}, true, true, ""},
		{"unowned row, adopt, but younger", ownershipInputs{MyRef: me, RowExists: true, Adopt: true, WinnerRef: other}, false, false, "Conflict"},
		{"built-in role", ownershipInputs{MyRef: me, RowExists: true, FreeToTake: true, WinnerRef: me}, true, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.What = "user x"
			d := decideOwnership(tc.in)
			if d.Allowed != tc.allowed || d.Adopting != tc.adopt || d.Reason != tc.reason {
				t.Fatalf("got %+v", d)
			}
			if !d.Allowed && d.Message == "" {
				t.Fatal("a refusal without a message")
			}
		})
	}
}

func TestWinnerOf(t *testing.T) {
	mk := func(ns, name string, sec int64) *authv1alpha1.ComfyUser {
		u := &authv1alpha1.ComfyUser{}
		u.Namespace, u.Name, u.CreationTimestamp = ns, name, metav1.NewTime(time.Unix(sec, 0))
		return u
	}
	got := winnerOf([]*authv1alpha1.ComfyUser{mk("b", "x", 10), mk("a", "z", 5), mk("a", "y", 5)})
	if got.Name != "y" {
		t.Fatalf("oldest = %s, want y (older, then by namespace/name)", got.Name)
	}
	if refOf(kindUser, winnerOf([]*authv1alpha1.ComfyUser{})) != "" {
		t.Fatal("no rivals must give no winner")
	}
}

func TestPlanUserRow(t *testing.T) {
	spec := authv1alpha1.ComfyUserSpec{Username: "alice", Role: "power", Disabled: true}
	if p := planUserRow(spec, nil, "r"); p.Create == nil || p.Create.Role != "power" || !p.Create.Disabled || p.Create.OwnerRef != "r" {
		t.Fatalf("create plan %+v", p)
	}
	row := &store.User{ID: "1", Username: "alice", Role: "user", OwnerRef: "r"}
	p := planUserRow(spec, row, "r")
	if p.Update == nil || fmt.Sprint(p.Changed) != "[role disabled]" || p.Update.ID != "1" {
		t.Fatalf("update plan %+v", p)
	}
	in := *p.Update
	if p := planUserRow(spec, &in, "r"); p.Update != nil || p.Create != nil || len(p.Changed) != 0 {
		t.Fatalf("a matching row must need nothing: %+v", p)
	}
}

func TestPasswordNeeded(t *testing.T) {
	at := time.UnixMilli(1_700_000_000_123)
	mt := metav1.NewMicroTime(at)
	for _, tc := range []struct {
		name    string
		exists  bool
		rowAt   time.Time
		rv      string
		applied *metav1.MicroTime
		want    bool
	}{
		{"new row", false, time.Time{}, "1", &mt, true},
		{"same version, untouched", true, at, "1", &mt, false},
		{"new Secret version", true, at, "2", &mt, true},
		{"changed behind our back", true, at.Add(time.Millisecond), "1", &mt, true},
		{"never applied", true, at, "1", nil, true},
	} {
		if got := passwordNeeded(tc.exists, tc.rowAt, "1", tc.applied, tc.rv); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestHashForSecretValue(t *testing.T) {
	argon, _ := password.Hash("x")
	const bcrypt = "$2b$12$abcdefghijklmnopqrstuu5Xz1R8Tn3cB/3b9N9xG0yq2s7b9f1cS"
	for _, v := range []string{argon, argon + "\n", bcrypt, bcrypt + "\r\n"} {
		got, err := hashForSecretValue([]byte(v))
		if err != nil || got != strings.TrimRight(v, "\r\n") {
			t.Errorf("hash %q stored as %q (%v), want as is", v, got, err)
		}
	}
	got, err := hashForSecretValue([]byte("plain text\n"))
	if err != nil || !password.IsHash(got) {
		t.Fatalf("plaintext: %q %v", got, err)
	}
	if r, _ := password.Verify(got, "plain text\n"); !r.OK {
		t.Fatal("plaintext must be hashed verbatim")
	}
}

func TestDecideUserRelease(t *testing.T) {
	mine := &store.User{OwnerRef: "r"}
	theirs := &store.User{OwnerRef: "x"}
	for _, tc := range []struct {
		policy authv1alpha1.DeletionPolicy
		row    *store.User
		want   releaseAction
	}{
		{"", mine, releaseDisable},
		{authv1alpha1.DeletionDisable, mine, releaseDisable},
		{authv1alpha1.DeletionDelete, mine, releaseDelete},
		{authv1alpha1.DeletionOrphan, mine, releaseOrphan},
		{authv1alpha1.DeletionDelete, theirs, releaseNothing},
		{authv1alpha1.DeletionDelete, nil, releaseNothing},
	} {
		if got := decideUserRelease(tc.policy, tc.row, "r"); got != tc.want {
			t.Errorf("%s %v: %s, want %s", tc.policy, tc.row, got, tc.want)
		}
	}
}

func TestDesiredRole(t *testing.T) {
	r := desiredRole("artists", authv1alpha1.ComfyRoleSpec{Permissions: map[string]bool{"can_run": true}})
	if !r.Permissions["can_run"] || r.Permissions["can_upload"] || len(r.Permissions) < 16 {
		t.Fatalf("custom role %+v", r.Permissions)
	}
	a := desiredRole("admin", authv1alpha1.ComfyRoleSpec{Permissions: map[string]bool{"can_run": false}})
	if a.Permissions["can_run"] || !a.Permissions["can_upload"] {
		t.Fatalf("admin override must keep the other defaults: %+v", a.Permissions)
	}
	if err := a.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestDiffIPRules(t *testing.T) {
	exp := metav1.NewTime(time.Unix(2_000_000_000, 0))
	want, err := desiredIPRules(authv1alpha1.IPRuleSpec{Action: authv1alpha1.ActionDeny, CIDRs: []string{"10.0.0.1/8", "10.0.0.0/8", "::ffff:1.2.3.4"}, ExpiresAt: &exp}, "r")
	if err != nil || len(want) != 2 || want[0].CIDR.String() != "1.2.3.4/32" || want[1].CIDR.String() != "10.0.0.0/8" {
		t.Fatalf("desired %+v %v", want, err)
	}
	have := []store.IPRule{
		{ID: 1, CIDR: netip.MustParsePrefix("10.0.0.0/8"), Action: store.Deny, ExpiresAt: exp.Time},
		{ID: 2, CIDR: netip.MustParsePrefix("10.0.0.0/8"), Action: store.Allow},
		{ID: 3, CIDR: netip.MustParsePrefix("1.2.3.4/32"), Action: store.Deny, Reason: "old", ExpiresAt: exp.Time},
	}
	add, remove := diffIPRules(want, have)
	if len(add) != 1 || add[0].CIDR.String() != "1.2.3.4/32" || fmt.Sprint(remove) != "[2]" {
		t.Fatalf("add %+v remove %v", add, remove)
	}
	if !ipRuleExpired(authv1alpha1.IPRuleSpec{ExpiresAt: &exp}, exp.Time) || ipRuleExpired(authv1alpha1.IPRuleSpec{}, exp.Time) {
		t.Fatal("expiry")
	}
}

func TestLockoutNames(t *testing.T) {
	for in, want := range map[string]string{"192.0.2.1": "ip-192-0-2-1", "2001:db8::1": "ip-2001-db8--1", "2001:db8::": "ip-2001-db8--0"} {
		if got := lockoutName(authv1alpha1.LockoutIP, in); got != want {
			t.Errorf("%s → %s, want %s", in, got, want)
		}
	}
	d1, d2 := lockoutName(authv1alpha1.LockoutDevice, "A b/c"), lockoutName(authv1alpha1.LockoutDevice, "a b/c")
	if d1 == d2 || !strings.HasPrefix(d1, "device-") || len(d1) != 27 {
		t.Fatalf("device names %s %s", d1, d2)
	}
}

func TestPlanMirror(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	bans := []store.IPRule{
		{CIDR: netip.MustParsePrefix("192.0.2.1/32"), Source: store.SourceAutomatic, CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)},
		{CIDR: netip.MustParsePrefix("192.0.2.1/32"), Source: store.SourceManual, CreatedAt: t0}, // permanent: wins
		{CIDR: netip.MustParsePrefix("192.0.2.2/32"), Source: store.SourceAutomatic, CreatedAt: t0.Add(time.Minute)},
		{CIDR: netip.MustParsePrefix("192.0.2.3/32"), Source: store.SourceAutomatic, CreatedAt: t0.Add(2 * time.Minute)},
	}
	want := wantedLockouts(bans, []store.LockedDevice{{DeviceID: "d", CreatedAt: t0.Add(3 * time.Minute)}})
	if len(want) != 4 || want[0].Spec.Kind != authv1alpha1.LockoutDevice || want[3].Spec.Subject != "192.0.2.1" || want[3].Spec.ExpiresAt != nil {
		t.Fatalf("wanted %+v", want)
	}
	stale := authv1alpha1.Lockout{}
	stale.Name = "ip-198-51-100-1"
	deleting := authv1alpha1.Lockout{}
	deleting.Name = "ip-203-0-113-1"
	deleting.DeletionTimestamp = &metav1.Time{Time: t0}
	changed := want[1]
	changed.Spec.Reason = "old"
	changed.Spec.Attempts = 7

	p := planMirror(want, []authv1alpha1.Lockout{stale, deleting, changed}, 3)
	if len(p.Delete) != 1 || p.Delete[0].Name != stale.Name {
		t.Fatalf("delete %+v", p.Delete)
	}
	if len(p.Update) != 1 || p.Update[0].Spec.Reason != want[1].Spec.Reason || p.Update[0].Spec.Attempts != 7 {
		t.Fatalf("update %+v", p.Update)
	}
	// Cap 3: "deleting" and "changed" are kept, so one new object fits: the newest ban.
	if len(p.Create) != 1 || p.Create[0].Name != want[0].Name || p.Overflow != 2 {
		t.Fatalf("create %d (%v), overflow %d", len(p.Create), p.Create, p.Overflow)
	}
	if !nextExpiry(want).IsZero() {
		t.Fatal("no wanted ban expires")
	}
	soon, later := metav1.NewTime(t0.Add(time.Hour)), metav1.NewTime(t0.Add(2*time.Hour))
	timed := []authv1alpha1.Lockout{want[0], want[1], want[2]}
	timed[0].Spec.ExpiresAt, timed[2].Spec.ExpiresAt = &later, &soon
	if got := nextExpiry(timed); !got.Equal(soon.Time) {
		t.Fatalf("next expiry %v, want the earliest %v", got, soon.Time)
	}
}

func TestIsDrift(t *testing.T) {
	for _, tc := range []struct {
		inSync bool
		out    outcome
		want   bool
	}{
		{true, outcome{Changed: []string{"role"}}, true},
		{false, outcome{Changed: []string{"role"}}, false},
		{true, outcome{Changed: []string{"password"}, NewInput: true}, false},
		{true, outcome{}, false},
	} {
		if got := isDrift(tc.inSync, tc.out); got != tc.want {
			t.Errorf("isDrift(%v, %+v) = %v", tc.inSync, tc.out, got)
		}
	}
}
