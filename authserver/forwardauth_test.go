package authserver_test

import (
	"testing"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func TestForwardAuth(t *testing.T) {
	e := start(t, testenv.Open(t, store.SQLite), nil)
	owner := e.bootstrap()
	r := e.do("POST", "/mss-login/api/users", map[string]string{"username": "carl", "password": "Carl-pass-1!", "role": "user"}, bearer(owner))
	if r.code != 201 {
		t.Fatal(r.raw)
	}
	carl := e.login("carl", "Carl-pass-1!", "192.0.2.40")
	cases := []struct {
		name string
		path string
		hdr  []string
		want int
		user string
	}{
		{"nginx allowed", "/mss-login/authz/auth-request", []string{bearer(carl), "X-Original-Method: POST",
			"X-Original-URL: https://comfy.example/api/prompt"}, 200, "carl"},
		{"nginx forbidden", "/mss-login/authz/auth-request", []string{bearer(carl), "X-Original-Method: GET",
			"X-Original-URL: https://comfy.example/api/../manager/x"}, 403, ""},
		{"nginx anonymous", "/mss-login/authz/auth-request", []string{"X-Original-Method: GET",
			"X-Original-URL: https://comfy.example/queue"}, 401, ""},
		{"nginx token in query", "/mss-login/authz/auth-request", []string{"X-Original-Method: GET",
			"X-Original-URL: https://comfy.example/ws?token=" + carl}, 200, "carl"},
		{"traefik allowed", "/mss-login/authz/forward-auth", []string{"Cookie: jwt_token=" + carl, "X-Forwarded-Method: GET",
			"X-Forwarded-Proto: https", "X-Forwarded-Host: comfy.example", "X-Forwarded-Uri: /api/history"}, 200, "carl"},
		{"traefik admin route", "/mss-login/authz/forward-auth", []string{bearer(carl), "X-Forwarded-Method: GET",
			"X-Forwarded-Uri: /mss-login/api/users"}, 403, ""},
		{"envoy allowed", "/mss-login/authz/ext-authz/api/object_info", []string{bearer(carl)}, 200, "carl"},
		{"envoy bad path", "/mss-login/authz/ext-authz/manager;x", []string{bearer(carl)}, 400, ""},
		{"traefik without original", "/mss-login/authz/forward-auth", []string{bearer(carl)}, 403, ""},
	}
	for _, c := range cases {
		r := e.do("GET", c.path, nil, append(c.hdr, from("192.0.2.40"))...)
		if r.code != c.want || r.header.Get("Comfy-User") != c.user {
			t.Errorf("%s: %d comfy-user %q (%s), want %d %q", c.name, r.code, r.header.Get("Comfy-User"), r.raw, c.want, c.user)
		}
	}
	if r := e.do("GET", "/mss-login/authz/auth-request", nil, "X-Original-URL: https://comfy.example/queue"); r.header.Get("Location") != "/login?next=%2Fqueue" {
		t.Errorf("nginx 401 must carry the login URL: %q", r.header.Get("Location"))
	}
}
