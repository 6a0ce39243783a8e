package roles

import "testing"

func TestBuiltinDefaultsMatchOriginal(t *testing.T) {
	cases := []struct {
		role, flag string
		want       bool
	}{
		{Admin, CanRun, true}, {Guest, CanRun, true},
		{User, CanUpload, true}, {Guest, CanUpload, false},
		{Power, CanAccessManager, true}, {User, CanAccessManager, false},
		{Admin, CanSeeRestrictedSettings, true}, {Power, CanSeeRestrictedSettings, false},
		{Power, CanHaveAPITokens, true}, {User, CanHaveAPITokens, false},
		{Admin, CanHaveNonExpiringJWT, false},
		{Admin, MFARequired, true}, {Power, MFARequired, false},
		{Guest, CanModifyWorkflows, false}, {User, CanModifyWorkflows, true},
	}
	for _, c := range cases {
		r, ok := Default(c.role)
		if !ok {
			t.Fatalf("%s not built in", c.role)
		}
		if got := r.Permissions[c.flag]; got != c.want {
			t.Errorf("%s.%s = %v, want %v", c.role, c.flag, got, c.want)
		}
		if len(r.Permissions) != len(Permissions) {
			t.Errorf("%s states %d flags, want all %d", c.role, len(r.Permissions), len(Permissions))
		}
	}
	if _, ok := Default("owner"); ok {
		t.Error("owner must be a user flag, not a role")
	}
}

func TestValidate(t *testing.T) {
	good := Role{Name: "artist", Permissions: map[string]bool{CanRun: true}, UI: map[string]bool{"ui_queue": false}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := (Role{Name: "x", Permissions: map[string]bool{"can_fly": true}}).Validate(); err == nil {
		t.Error("unknown permission accepted")
	}
	if err := (Role{Name: "x", UI: map[string]bool{"colour": true}}).Validate(); err == nil {
		t.Error("bad UI flag accepted")
	}
}
