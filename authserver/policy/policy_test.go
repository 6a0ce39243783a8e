package policy

import (
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/roles"
)

func TestNormalize(t *testing.T) {
	cases := []struct{ in, fwd, match string }{
		{"/", "/", "/"},
		{"/prompt", "/prompt", "/prompt"},
		{"/api/prompt/", "/api/prompt", "/api/prompt"},
		{"//manager", "/manager", "/manager"},
		{"/api/../manager", "/manager", "/manager"},
		{"/%6danager", "/manager", "/manager"},
		{"/API/Manager", "/API/Manager", "/api/manager"},
		{"/a/./b/../c", "/a/c", "/a/c"},
		{"/../../x", "/x", "/x"},
		{"/userdata/workflows%2Fmy%20flow.json", "/userdata/workflows%2Fmy%20flow.json", "/userdata/workflows/my flow.json"},
		{"/view?x", "/view%3Fx", "/view?x"}, // a raw path never holds the query; '?' here is data
	}
	for _, c := range cases {
		p, err := Normalize(c.in)
		if err != nil {
			t.Errorf("Normalize(%q): %v", c.in, err)
			continue
		}
		if p.Forward != c.fwd || p.Match != c.match {
			t.Errorf("Normalize(%q) = %+v, want forward %q match %q", c.in, p, c.fwd, c.match)
		}
	}
	for _, bad := range []string{"", "manager", "/manager;x", "/manager%3bx", "/%2e%2e%2fmanager%2f..",
		"/manager%2f..", "/x%2f%2fy", "/%252e%252e/manager", "/a%00b", "/a\\b", "/a%5cb", "/%zz", "/a%2F.%2Fb"} {
		if p, err := Normalize(bad); err == nil {
			t.Errorf("Normalize(%q) accepted as %+v", bad, p)
		}
	}
}

func decide(t *testing.T, method, raw string) Rule {
	t.Helper()
	p, err := Normalize(raw)
	if err != nil {
		t.Fatalf("Normalize(%q): %v", raw, err)
	}
	return Decide(method, p)
}

func TestDecideTable(t *testing.T) {
	cases := []struct {
		method, path string
		access       Access
		perm         string
	}{
		{"GET", "/login", Public, ""},
		{"POST", "/login", Public, ""},
		{"GET", "/mss-login/static/app.css", Public, ""},
		{"GET", "/healthz", Public, ""},
		{"GET", "/", Authenticated, ""},
		{"GET", "/assets/index.js", Authenticated, ""},
		{"POST", "/prompt", Permission, roles.CanRun},
		{"POST", "/api/prompt", Permission, roles.CanRun},
		{"GET", "/api/prompt", Permission, roles.CanAccessAPI},
		{"POST", "/queue", Permission, roles.CanRun},
		{"POST", "/api/interrupt", Permission, roles.CanRun},
		{"POST", "/upload/image", Permission, roles.CanUpload},
		{"POST", "/api/upload/mask", Permission, roles.CanUpload},
		{"GET", "/manager/queue/status", Permission, roles.CanAccessManager},
		{"GET", "/api/manager/x", Permission, roles.CanAccessManager},
		{"GET", "/extensions/comfyui-manager/js/a.js", Permission, roles.CanAccessManager},
		{"GET", "/customnode/getlist", Permission, roles.CanAccessManager},
		{"POST", "/api/extensions/apply", Permission, roles.CanManageExtensions},
		{"POST", "/api/settings/Comfy.Extension.Disabled", Permission, roles.CanManageExtensions},
		{"GET", "/api/settings/Comfy.Extension.Disabled", Permission, roles.CanAccessAPI},
		{"POST", "/api/userdata/workflows%2Fa.json", Permission, roles.CanModifyWorkflows},
		{"DELETE", "/userdata/workflows%2Fa.json", Permission, roles.CanModifyWorkflows},
		{"POST", "/api/userdata/x.json/move/workflows%2Fa.json", Permission, roles.CanModifyWorkflows},
		{"GET", "/api/userdata/workflows%2Fa.json", Permission, roles.CanAccessAPI},
		{"POST", "/api/userdata/comfy.settings.json", Permission, roles.CanAccessAPI},
		{"GET", "/object_info", Permission, roles.CanAccessAPI}, // the original left bare routes open
		{"GET", "/history", Permission, roles.CanAccessAPI},
		{"GET", "/view", Permission, roles.CanAccessAPI},
		{"GET", "/api/anything/new", Permission, roles.CanAccessAPI},
		{"GET", "/ws", Permission, roles.CanAccessAPI},
		{"POST", "/users", Admin, ""},
		{"GET", "/extensions/rgthree-comfy/x.js", Permission, "settings_rgthree"},
		{"GET", "/api/rgthree/config", Permission, "settings_rgthree"},
		{"GET", "/mss-login/api/me", Authenticated, ""},
		{"POST", "/mss-login/generate_token", Public, ""}, // the handler checks username and password
		{"GET", "/mss-login/api/users", Admin, ""},
		{"PUT", "/api/mss-login/api/users/bob", Admin, ""},
		{"GET", "/mss-login/api/groups", Authenticated, ""},
		{"PUT", "/mss-login/api/groups", Admin, ""},
		{"GET", "/mss-login/api/ip-lists", Admin, ""},
		{"GET", "/mss-login/api/update-status", Admin, ""},
		{"POST", "/mss-login-gallery/mark-nsfw", Authenticated, ""}, // the original left it open
	}
	for _, c := range cases {
		r := decide(t, c.method, c.path)
		if r.Access != c.access || r.Permission != c.perm {
			t.Errorf("%s %s = %s %q, want %s %q", c.method, c.path, r.Access, r.Permission, c.access, c.perm)
		}
		if r.Access == Permission && !roles.IsPermission(r.Permission) && !roles.IsUIFlag(r.Permission) {
			t.Errorf("%s %s needs unknown flag %q", c.method, c.path, r.Permission)
		}
	}
}

// Bypass attempts: each must be refused as malformed or land on the manager rule.
func TestBypassCorpus(t *testing.T) {
	for _, raw := range []string{
		"/manager", "/api/../manager", "//manager", "/%6danager", "/API/manager", "/Manager/", "/manager;x",
		"/manager%2f..", "/./manager", "/api/./manager/", "/x/../manager", "/api//manager", "/%2fmanager",
		"/%4D%41%4E%41%47%45%52", "/api/%2e%2e/manager", "/manager%00", "/manager\\", "/%2e/manager",
		"/..%2fmanager", "/api/..;/manager", "/manager/..%2f..%2fprompt",
	} {
		p, err := Normalize(raw)
		if err != nil {
			continue // refused with 400: fine
		}
		r := Decide("GET", p)
		if r.Permission != roles.CanAccessManager {
			t.Errorf("%q → forward %q decided %s %q: manager bypass", raw, p.Forward, r.Access, r.Permission)
		}
	}
}

func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"/", "/api/../manager", "/userdata/workflows%2Fa.json", "/%2e%2e/x", "//a//b/", "/a/%C3%A9"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := Normalize(raw)
		if err != nil {
			return
		}
		// Invariants: canonical forms, and normalising the forwarded path is a fixed point,
		// so the upstream sees exactly the path that was decided on.
		if !strings.HasPrefix(p.Match, "/") || strings.Contains(p.Match, "//") ||
			(len(p.Match) > 1 && strings.HasSuffix(p.Match, "/")) {
			t.Fatalf("Normalize(%q).Match = %q is not canonical", raw, p.Match)
		}
		for _, seg := range strings.Split(p.Match[1:], "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("Normalize(%q).Match = %q keeps a dot segment", raw, p.Match)
			}
		}
		if canonical(raw) {
			if slow, err := normalizeSegments(raw); err != nil || slow != p {
				t.Fatalf("fast path %+v differs from the general one %+v (%v) for %q", p, slow, err, raw)
			}
		}
		again, err := Normalize(p.Forward)
		if err != nil || again != p {
			t.Fatalf("Normalize(%q) = %+v, but its Forward normalises to %+v, %v", raw, p, again, err)
		}
		_ = Decide("POST", p)
	})
}
