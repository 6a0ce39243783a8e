package releasecheck

import "testing"

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want Version
	}{
		{"1.2.3", Version{1, 2, 3, ""}},
		{"v1.2.3", Version{1, 2, 3, ""}},
		{" V10.0.1 ", Version{10, 0, 1, ""}},
		{"1.2", Version{1, 2, 0, ""}},
		{"2", Version{2, 0, 0, ""}},
		{"1.2.3-rc.1", Version{1, 2, 3, "rc.1"}},
		{"1.2.3-alpha", Version{1, 2, 3, "alpha"}},
		{"1.2.3+build.7", Version{1, 2, 3, ""}},
		{"1.2.3-beta.2+sha.abc", Version{1, 2, 3, "beta.2"}},
		{"1.2.3rc1", Version{1, 2, 3, "rc1"}}, // PEP 440
		{"0.0.8b2", Version{0, 0, 8, "b2"}},
		{"1.0.0.dev3", Version{1, 0, 0, "dev3"}},
		{"v0.1.0-3-gabc1234", Version{0, 1, 0, ""}}, // git describe
		{"v0.1.0-3-gabc1234-dirty", Version{0, 1, 0, ""}},
		{"v0.2.0-rc.1-5-g0123abcd", Version{0, 2, 0, "rc.1"}},
	}
	for _, tt := range tests {
		got, err := ParseVersion(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseVersion(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "dev", "v", "1.2.3.4", "1..2", "latest", "1.2.3-", "1.2.3-rc..1", "a1.2", "-1.2.3", "1.-2.3", "3cd5fb1"} {
		if v, err := ParseVersion(bad); err == nil {
			t.Errorf("ParseVersion(%q) = %+v, want an error", bad, v)
		}
	}
}

func TestCompare(t *testing.T) {
	// Each is lower than the next: semver.org §11's example, then more.
	ordered := []string{
		"0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "v1.0.1", "1.2.0", "1.10.0", "2.0.0-rc.1", "2.0.0", "10.0.0",
	}
	for i := range ordered {
		for j := range ordered {
			a, _ := ParseVersion(ordered[i])
			b, _ := ParseVersion(ordered[j])
			want := sign(i - j)
			if got := a.Compare(b); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", ordered[i], ordered[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("v1.2.3")
	b, _ := ParseVersion("1.2.3+other-build")
	if a.Compare(b) != 0 {
		t.Error("build metadata and the v prefix must not order versions")
	}
}

func TestOffered(t *testing.T) {
	tests := []struct {
		current, latest string
		want            bool
	}{
		{"1.0.0", "1.0.1", true},            // newer
		{"1.0.0", "1.0.0", false},           // same
		{"1.1.0", "1.0.9", false},           // older
		{"1.0.0", "1.1.0-rc.1", false},      // a stable install is not offered a release candidate
		{"1.1.0-rc.1", "1.1.0-rc.2", true},  // a pre-release install is
		{"1.1.0-rc.1", "1.1.0", true},       // the release after its candidate
		{"1.1.0-rc.2", "1.1.0-rc.1", false}, // older candidate
		{"dev", "0.0.1", true},              // an unversioned build is older than every release
		{"3cd5fb1", "0.1.0", true},          // git describe --always without a tag
		{"v0.1.0-3-gabc1234", "0.1.0", false},
		{"v0.1.0-3-gabc1234", "0.1.1", true},
	}
	for _, tt := range tests {
		latest, err := ParseVersion(tt.latest)
		if err != nil {
			t.Fatal(err)
		}
		if got := Offered(CurrentVersion(tt.current), latest); got != tt.want {
			t.Errorf("Offered(current %s, latest %s) = %v, want %v", tt.current, tt.latest, got, tt.want)
		}
	}
}
