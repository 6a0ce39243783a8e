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
	return New(nil).Decide(method, p).Rule
}

func TestDecideTable(t *testing.T) {
	cases := []struct {
		method, path string
		access       Access
		perm         string
	}{
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
		{"POST", "/api/userdata/comfy.settings.json", Permission, roles.CanManageExtensions}, // every setting, the extension ones too
		{"POST", "/api/userdata/x.json/move/comfy.settings.json.", Permission, roles.CanManageExtensions},
		{"POST", "/api/userdata/workflows.%2Fa.json", Permission, roles.CanModifyWorkflows},
		{"GET", "/api/login", Authenticated, ""},                // the auth server's namespace under a prefix: never forwarded
		{"GET", "/object_info", Permission, roles.CanAccessAPI}, // the original left bare routes open
		{"GET", "/history", Permission, roles.CanAccessAPI},
		{"GET", "/view", Permission, roles.CanAccessAPI},
		{"GET", "/api/anything/new", Permission, roles.CanAccessAPI},
		{"GET", "/ws", Permission, roles.CanAccessAPI},
		{"POST", "/users", Admin, ""},
		{"GET", "/extensions/rgthree-comfy/x.js", Permission, "settings_rgthree"},
		{"GET", "/api/rgthree/config", Permission, "settings_rgthree"},
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
		// ComfyUI-Manager 4.x serves its routes under /v2, and ComfyUI repeats them under /api.
		"/v2/manager/queue/task", "/api/v2/manager/queue/task", "/V2/Manager/queue/task", "/api/v2/../v2/manager",
		"/v2%2fmanager", "/api/v1/v2/api/snapshot/restore", "/v2//customnode/install/git_url", "/v3/manager",
		"/api/api/v2/comfyui_manager/comfyui_switch_version", "/v2/./extensions/comfyui-manager-legacy/a.js",
	} {
		p, err := Normalize(raw)
		if err != nil {
			continue // refused with 400: fine
		}
		r := New(nil).Decide("GET", p)
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
		_ = New(nil).Decide("POST", p)
	})
}

// familyCases are one route of every permission class, bare.
var familyCases = []struct {
	method, path string
	access       Access
	perm         string
}{
	{"POST", "/manager/queue/task", Permission, roles.CanAccessManager},
	{"POST", "/manager/queue/update_all", Permission, roles.CanAccessManager},
	{"POST", "/snapshot/restore", Permission, roles.CanAccessManager},
	{"POST", "/customnode/install/git_url", Permission, roles.CanAccessManager},
	{"GET", "/customnode/alternatives", Permission, roles.CanAccessManager},
	{"GET", "/externalmodel/getlist", Permission, roles.CanAccessManager},
	{"POST", "/comfyui_manager/comfyui_switch_version", Permission, roles.CanAccessManager},
	{"POST", "/manager/share", Permission, roles.CanAccessManager},
	{"GET", "/extensions/comfyui-manager-legacy/js/a.js", Permission, roles.CanAccessManager},
	{"POST", "/prompt", Permission, roles.CanRun},
	{"POST", "/queue", Permission, roles.CanRun},
	{"POST", "/interrupt", Permission, roles.CanRun},
	{"POST", "/free", Permission, roles.CanViewAllComfyUIItems},
	{"POST", "/jobs/cancel", Permission, roles.CanRun},
	{"POST", "/jobs/0e9b/cancel", Permission, roles.CanRun},
	{"POST", "/upload/image", Permission, roles.CanUpload},
	{"POST", "/assets", Permission, roles.CanUpload},
	{"DELETE", "/assets/0e9b", Permission, roles.CanUpload},
	{"POST", "/extensions/apply", Permission, roles.CanManageExtensions},
	{"POST", "/settings/Comfy.Extension.Disabled", Permission, roles.CanManageExtensions},
	{"POST", "/userdata/workflows%2Fa.json", Permission, roles.CanModifyWorkflows},
	{"POST", "/userdata/a.json/move/workflows%2Fb.json", Permission, roles.CanModifyWorkflows},
	{"POST", "/users", Admin, ""},
	{"GET", "/internal/logs", Permission, roles.CanViewConsole},
	{"PATCH", "/internal/logs/subscribe", Permission, roles.CanViewConsole},
	{"GET", "/rgthree/config", Permission, "settings_rgthree"},
	{"GET", "/history", Permission, roles.CanAccessAPI},
	{"GET", "/jobs", Permission, roles.CanAccessAPI},
	{"GET", "/userdata", Permission, roles.CanAccessAPI},
}

// prefixChains are every sequence of up to three of the prefixes a route family is served under.
func prefixChains() []string {
	parts := []string{"/api", "/v1", "/v2", "/v3", "/API", "/V2", "/v10"}
	chains := []string{""}
	for range 3 {
		for _, c := range chains {
			for _, p := range parts {
				if len(strings.Split(c, "/")) <= 3 {
					chains = append(chains, c+p)
				}
			}
		}
	}
	return chains
}

// Every permission class holds under every prefix combination: /api, /v2 (ComfyUI-Manager 4.x),
// and whatever they combine to.
func TestRouteFamiliesUnderEveryPrefix(t *testing.T) {
	chains := prefixChains()
	if len(chains) < 300 {
		t.Fatalf("only %d prefix chains", len(chains))
	}
	for _, c := range familyCases {
		for _, prefix := range chains {
			r := decide(t, c.method, prefix+c.path)
			if r.Access != c.access || r.Permission != c.perm {
				t.Errorf("%s %s%s = %s %q, want %s %q", c.method, prefix, c.path, r.Access, r.Permission, c.access, c.perm)
			}
		}
	}
}

func TestRoute(t *testing.T) {
	for in, want := range map[string]string{
		"/api/v2/manager/x": "/manager/x", "/v2": "/", "/api": "/", "/api/api/jobs": "/jobs", "/v2x/manager": "/v2x/manager",
		"/v/manager": "/v/manager", "/apix": "/apix", "/prompt": "/prompt",
	} {
		if got, _ := Route(in); got != want {
			t.Errorf("Route(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzRouteFamilies: a prefix chain in front of a ComfyUI route never weakens its rule.
func FuzzRouteFamilies(f *testing.F) {
	for _, c := range familyCases {
		f.Add(c.path, uint16(0x21))
	}
	parts := []string{"/api", "/v1", "/v2", "/V2", "/v77", "/API", "/./api", "/x/../v2"}
	f.Fuzz(func(t *testing.T, path string, pick uint16) {
		bare, err := Normalize(path)
		if err != nil {
			return
		}
		pol := New(nil)
		want := pol.Decide("POST", bare)
		if want.Local {
			return
		}
		prefix := ""
		for i := 0; i < 4 && pick != 0; i++ {
			prefix += parts[int(pick&7)]
			pick >>= 3
		}
		p, err := Normalize(prefix + path)
		if err != nil {
			return
		}
		got := pol.Decide("POST", p)
		if got.Local {
			return // the auth server's own /api/mss-login namespace
		}
		if got.Access == Public {
			t.Fatalf("%q is public", prefix+path)
		}
		strict := want.Access == Admin || want.Access == Permission && want.Permission != roles.CanAccessAPI
		if strict && (got.Access != want.Access || got.Permission != want.Permission) {
			t.Fatalf("%q decided %s %q, but bare %q needs %s %q", prefix+path, got.Access, got.Permission, path, want.Access, want.Permission)
		}
	})
}

func TestSettingsRule(t *testing.T) {
	p, _ := Normalize("/api/settings")
	if d := New(nil).Decide("POST", p); !d.SettingsBody {
		t.Fatalf("bulk settings write not decided on its body: %+v", d)
	}
	if d := New(nil).Decide("GET", p); d.SettingsBody || d.Permission != roles.CanAccessAPI {
		t.Fatalf("reading the settings: %+v", d)
	}
	for body, perm := range map[string]string{
		`{"Comfy.ColorPalette": "dark"}`:                                    roles.CanAccessAPI,
		`{"Comfy.ColorPalette": "dark", "Comfy.Extension.Disabled": ["x"]}`: roles.CanManageExtensions,
		`{"comfy.extension.disabled": []}`:                                  roles.CanManageExtensions,
		`{"Comfy.\u0045xtension.Disabled": []}`:                             roles.CanManageExtensions,
		`{"Comfy/Extension": 1}`:                                            roles.CanManageExtensions,
		`["Comfy.Extension.Disabled"]`:                                      roles.CanManageExtensions, // not an object: fail closed
		`{"a": NaN}`:                                                        roles.CanManageExtensions,
		``:                                                                  roles.CanManageExtensions,
		`null`:                                                              roles.CanManageExtensions,
		`{"Comfy.ColorPalette": "dark"} trailing`:                           roles.CanManageExtensions,
	} {
		if r := SettingsRule([]byte(body)); r.Permission != perm {
			t.Errorf("SettingsRule(%s) needs %q, want %q", body, r.Permission, perm)
		}
	}
}

func TestLocalTable(t *testing.T) {
	pol := New([]LocalRoute{
		{"GET", "/login", PublicRule},
		{"DELETE", "/mss-login/api/tokens/{id}", UserRule},
		{"PUT", "/api/mss-login/api/users/{username}", AdminRule},
		{"GET", "/mss-login/static/", PublicRule},
		{"", "/mss-login/authz/ext-authz/", PublicRule},
	})
	cases := []struct {
		method, path string
		route        int
		vars         []string
		wrongMethod  bool
		access       Access
	}{
		{"GET", "/login", 0, nil, false, Public},
		{"HEAD", "/login", 0, nil, false, Public},
		{"GET", "/LOGIN", 0, nil, false, Public},
		{"POST", "/login", -1, nil, true, Authenticated},
		{"DELETE", "/mss-login/api/tokens/abc", 1, []string{"abc"}, false, Authenticated},
		{"DELETE", "/mss-login/api/tokens/a%2Fb", 1, []string{"a/b"}, false, Authenticated},
		{"DELETE", "/mss-login/api/tokens/abc/x", -1, nil, false, Authenticated},
		{"PUT", "/api/mss-login/api/users/Bob", 2, []string{"Bob"}, false, Admin},
		{"PUT", "/api/MSS-LOGIN/api/users/Bob", 2, []string{"Bob"}, false, Admin},
		{"GET", "/mss-login/static/a/b.css", 3, nil, false, Public},
		{"GET", "/mss-login/static", 3, nil, false, Public},
		{"POST", "/mss-login/authz/ext-authz/prompt", 4, nil, false, Public},
		{"GET", "/mss-login/unknown", -1, nil, false, Authenticated},
		{"GET", "/api/mss-login/unknown", -1, nil, false, Authenticated},
	}
	for _, c := range cases {
		p, err := Normalize(c.path)
		if err != nil {
			t.Fatal(err)
		}
		d := pol.Decide(c.method, p)
		if !d.Local || d.Route != c.route || d.WrongMethod != c.wrongMethod || d.Access != c.access ||
			strings.Join(d.Vars, ",") != strings.Join(c.vars, ",") {
			t.Errorf("%s %s = %+v", c.method, c.path, d)
		}
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a local route outside the namespace was accepted")
		}
	}()
	New([]LocalRoute{{"GET", "/prompt", PublicRule}})
}
