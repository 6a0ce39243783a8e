package authserver

import (
	"testing"

	"github.com/mss-login/mss-login/authserver/policy"
)

// The route table is the one list of the auth server's endpoints: every entry has a handler and
// lands on itself through the policy, and the rules are the intended ones.
func TestRouteTable(t *testing.T) {
	s := &Server{} // method values only: nothing is called
	table := s.routeTable()
	pol := localPolicy(table)
	for i, r := range table {
		if r.handler == nil {
			t.Errorf("%s %s has no handler", r.method, r.path)
		}
		path := r.path
		if path[len(path)-1] == '/' {
			path += "x"
		}
		method := r.method
		if method == "" {
			method = "PATCH"
		}
		p, err := policy.Normalize(path)
		if err != nil {
			t.Fatal(err)
		}
		// The first entry of the same method and path wins (the /api aliases repeat none).
		if d := pol.Decide(method, p); d.Route < 0 || d.Route != i && table[d.Route].path != r.path {
			t.Errorf("%s %s is decided as route %d", r.method, r.path, d.Route)
		}
	}
	cases := []struct {
		method, path string
		access       policy.Access
	}{
		{"GET", "/login", policy.Public},
		{"POST", "/login", policy.Public},
		{"GET", "/mss-login/static/app.css", policy.Public},
		{"GET", "/healthz", policy.Public},
		{"GET", "/mss-login/api/me", policy.Authenticated},
		{"POST", "/mss-login/generate_token", policy.Public}, // the handler checks username and password
		{"POST", "/api/mss-login/generate_token", policy.Public},
		{"POST", "/generate_token", policy.Public},
		{"GET", "/mss-login/api/users", policy.Admin},
		{"PUT", "/api/mss-login/api/users/bob", policy.Admin},
		{"DELETE", "/MSS-LOGIN/API/USERS/bob", policy.Admin},
		{"GET", "/mss-login/api/groups", policy.Authenticated},
		{"GET", "/mss-login/api/ip-lists", policy.Admin},
		{"GET", "/api/mss-login/api/update-status", policy.Admin},
		{"POST", "/api/mss-login/recovery/reset-mfa", policy.Public},
		{"PUT", "/mss-login/api/groups", policy.Authenticated}, // no such route: 405 after a login
		{"GET", "/mss-login/nothing/here", policy.Authenticated},
	}
	for _, c := range cases {
		p, _ := policy.Normalize(c.path)
		if d := pol.Decide(c.method, p); !d.Local || d.Access != c.access {
			t.Errorf("%s %s = local %t %s, want local %s", c.method, c.path, d.Local, d.Access, c.access)
		}
	}
}
