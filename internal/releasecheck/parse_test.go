package releasecheck

import (
	"errors"
	"testing"
)

func TestParseReleaseFeed(t *testing.T) {
	tests := []struct {
		name       string
		body       string
		includePre bool
		want       Release // Version compared through Name and Ref
	}{
		{"GitHub object", `{"tag_name": "v1.4.0", "html_url": "https://h/r", "body": "notes"}`, false,
			Release{Name: "1.4.0", Ref: "v1.4.0", URL: "https://h/r", Body: "notes"}},
		{"object with version only", `{"version": "2.0.1"}`, false, Release{Name: "2.0.1", Ref: "2.0.1"}},
		{"GitLab tags: highest, not the first", `[{"name": "v1.2.0"}, {"name": "v1.10.0"}, {"name": "v1.9.9"}]`, false,
			Release{Name: "1.10.0", Ref: "v1.10.0"}},
		{"tag_name in a list, junk skipped", `[{"tag_name": "nightly"}, {"tag_name": "0.3.0"}, {"name": "release-x"}]`, false,
			Release{Name: "0.3.0", Ref: "0.3.0"}},
		{"pre-release skipped for a stable install", `[{"name": "v2.0.0-rc.1"}, {"name": "v1.9.0"}]`, false,
			Release{Name: "1.9.0", Ref: "v1.9.0"}},
		{"pre-release kept for a pre-release install", `[{"name": "v2.0.0-rc.1"}, {"name": "v1.9.0"}]`, true,
			Release{Name: "2.0.0-rc.1", Ref: "v2.0.0-rc.1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReleaseFeed([]byte(tt.body), tt.includePre)
			if err != nil {
				t.Fatal(err)
			}
			got.Version = Version{}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
	for _, bad := range []string{``, `null`, `"v1.0.0"`, `{"tag_name": `, `{"name": "x"}`, `{"tag_name": "latest"}`, `[]`,
		`[{"name": "foo"}]`, `[{"name": 3}]`, `<html>rate limited</html>`} {
		if r, err := ParseReleaseFeed([]byte(bad), false); !errors.Is(err, errMalformed) {
			t.Errorf("ParseReleaseFeed(%q) = %+v, %v; want a malformed-response error", bad, r, err)
		}
	}
}

func TestParseBranchVersion(t *testing.T) {
	tests := []struct{ body, want string }{
		{`{"version": "1.2.3"}`, "1.2.3"},
		{`{"version": "v1.2.3", "other": 1}`, "1.2.3"},
		{"[project]\nname = \"comfyui-mss-login\"\nversion = \"0.0.8\"\n", "0.0.8"},
		{"  version='2.1.0rc1'\n", "2.1.0rc1"},
	}
	for _, tt := range tests {
		_, name, err := ParseBranchVersion([]byte(tt.body))
		if err != nil || name != tt.want {
			t.Errorf("ParseBranchVersion(%q) = %q, %v; want %q", tt.body, name, err, tt.want)
		}
	}
	for _, bad := range []string{``, `{}`, `{"version": 1}`, `{"version": "soon"}`, "name = \"x\"\n", "target_version = \"1.0\"", `{"version":`} {
		if _, _, err := ParseBranchVersion([]byte(bad)); !errors.Is(err, errMalformed) {
			t.Errorf("ParseBranchVersion(%q) error = %v, want malformed", bad, err)
		}
	}
}

func TestGitHubAPIRelease(t *testing.T) {
	tests := []struct {
		url, base, owner, repo string
		ok                     bool
	}{
		{"https://api.github.com/repos/mss-login/mss-login/releases/latest", "https://api.github.com/", "mss-login", "mss-login", true},
		{"https://ghe.example.com/api/v3/repos/team/app/releases/latest/", "https://ghe.example.com/api/v3/", "team", "app", true},
		{"http://127.0.0.1:8080/repos/o/r/releases/latest", "http://127.0.0.1:8080/", "o", "r", true},
		{"https://gitlab.example.com/api/v4/projects/12/repository/tags", "", "", "", false},
		{"https://api.github.com/repos/o/r/releases", "", "", "", false},
		{"https://api.github.com/repos/o/r/tags", "", "", "", false},
	}
	for _, tt := range tests {
		base, owner, repo, ok := GitHubAPIRelease(tt.url)
		gotBase := ""
		if base != nil {
			gotBase = base.String()
		}
		if ok != tt.ok || gotBase != tt.base || owner != tt.owner || repo != tt.repo {
			t.Errorf("GitHubAPIRelease(%s) = %q %q %q %v; want %q %q %q %v", tt.url, gotBase, owner, repo, ok, tt.base, tt.owner, tt.repo, tt.ok)
		}
	}
}

func TestChangelogURL(t *testing.T) {
	tests := []struct {
		urls        []string
		owner, repo string
		ok          bool
	}{
		{[]string{"https://api.github.com/repos/mss-login/mss-login/releases/latest"}, "mss-login", "mss-login", true},
		{[]string{"https://raw.githubusercontent.com/a/b/release/pyproject.toml"}, "a", "b", true},
		{[]string{"https://gitlab.example.com/api/v4/projects/12/repository/tags", "https://github.com/c/d.git"}, "c", "d", true},
		{[]string{"https://gitlab.example.com/api/v4/projects/12/repository/tags", "https://example.com/releases"}, "", "", false},
		{[]string{"https://api.github.com/repos/only-owner"}, "", "", false},
	}
	for _, tt := range tests {
		owner, repo, ok := Repository(tt.urls...)
		if owner != tt.owner || repo != tt.repo || ok != tt.ok {
			t.Errorf("Repository(%q) = %q %q %v; want %q %q %v", tt.urls, owner, repo, ok, tt.owner, tt.repo, tt.ok)
		}
	}
	got := ChangelogURL("https://raw.githubusercontent.com/", "mss-login", "mss-login", "v1.2.0", "1.2.0")
	if want := "https://raw.githubusercontent.com/mss-login/mss-login/v1.2.0/readme/changelogs/1.2.0.md"; got != want {
		t.Errorf("ChangelogURL = %s, want %s", got, want)
	}
	got = ChangelogURL("http://127.0.0.1:9/raw", "o", "r", "feature/x", "2.0.0-rc.1")
	if want := "http://127.0.0.1:9/raw/o/r/feature%2Fx/readme/changelogs/2.0.0-rc.1.md"; got != want {
		t.Errorf("ChangelogURL = %s, want %s", got, want)
	}
}

func TestCapText(t *testing.T) {
	if got := capText("short", false, 10); got != "short" {
		t.Errorf("capText kept %q", got)
	}
	got := capText("ab€cd", false, 4) // "€" is 3 bytes: cut before it, never inside
	if got != "ab\n\n… (truncated)" {
		t.Errorf("capText = %q", got)
	}
}
