package policy

import (
	"fmt"
	"net/url"
	"strings"
)

// LocalRoute is one of the auth server's own routes, as its route table declares it. The same
// table builds the auth server's dispatch and this policy, so a route cannot be served without a
// rule, nor a rule exist for a route that is not served.
type LocalRoute struct {
	// Method and Path: "GET", "/mss-login/api/tokens/{id}". A {name} segment matches one path
	// segment; a Path ending in "/" matches everything below it. GET also matches HEAD; an
	// empty Method matches every method.
	Method, Path string
	Rule         Rule
}

type localPattern struct {
	method string
	segs   []string // lower-case literals, or "" for a {name} segment
	names  []string // the {name}s, in order
	prefix bool     // the path ended in "/": matches anything below
	rule   Rule
}

// Policy decides every request: the auth server's own routes from the table it was built with,
// every other path as a ComfyUI route (decideComfy).
type Policy struct {
	local []localPattern
}

// New builds the policy for the auth server's route table. It panics on a malformed pattern:
// the table is code, and a typo must fail at start, not at the first request.
func New(routes []LocalRoute) *Policy {
	p := &Policy{}
	for _, r := range routes {
		lp := localPattern{method: r.Method, rule: r.Rule}
		path := r.Path
		if strings.HasSuffix(path, "/") && path != "/" {
			lp.prefix, path = true, strings.TrimSuffix(path, "/")
		}
		if !inLocalNamespace(strings.ToLower(path)) {
			panic(fmt.Sprintf("policy: local route %s %s is outside the auth server's namespace", r.Method, r.Path))
		}
		for _, s := range strings.Split(path[1:], "/") {
			if strings.HasPrefix(s, "{") && strings.HasSuffix(s, "}") {
				lp.segs, lp.names = append(lp.segs, ""), append(lp.names, s[1:len(s)-1])
				continue
			}
			lp.segs = append(lp.segs, strings.ToLower(s))
		}
		p.local = append(p.local, lp)
	}
	return p
}

// Decision is what a request needs, and for the auth server's own routes which one it is.
type Decision struct {
	Rule
	// Route is the index of the matched local route in the table, or -1 (a ComfyUI route, or
	// a path in the auth server's namespace that no route serves: 404, or 405 with WrongMethod).
	Route       int
	WrongMethod bool
	// Vars are the {name} values of the matched route (decoded), by name order of its pattern.
	Vars  []string
	Names []string
}

// Decide returns what a request with this method and normalised path needs. It is total: every
// path gets a rule, and anything not listed needs at least a logged-in user. The auth server's
// own namespace (/login, /logout, /register, /healthz, /readyz, /generate_token, /mss-login/…
// and /api/mss-login/…) is never forwarded: a path there that no route serves still needs a
// logged-in user, then gets 404.
func (pol *Policy) Decide(method string, p Path) Decision {
	// Under a stripped prefix too (/api/login, /v1/mss-login/…): such a path is never forwarded,
	// so it cannot reach an MSS-Login extension still installed in ComfyUI.
	if r, _ := Route(p.Match); !inLocalNamespace(p.Match) && !inLocalNamespace(r) {
		return Decision{Rule: decideComfy(method, p), Route: -1}
	}
	d := Decision{Rule: UserRule, Route: -1}
	d.Local = true
	segs := strings.Split(p.Forward[1:], "/")
	for i, lp := range pol.local {
		vars, ok := lp.match(segs)
		if !ok {
			continue
		}
		if lp.method != "" && lp.method != method && !(lp.method == "GET" && method == "HEAD") {
			d.WrongMethod = true
			continue
		}
		d = Decision{Rule: lp.rule, Route: i, Vars: vars, Names: lp.names}
		d.Local = true
		return d
	}
	return d
}

// match reports whether the path segments (still percent-encoded) fit the pattern.
func (lp localPattern) match(segs []string) ([]string, bool) {
	if len(segs) < len(lp.segs) || (!lp.prefix && len(segs) != len(lp.segs)) {
		return nil, false
	}
	var vars []string
	for i, want := range lp.segs {
		got, err := url.PathUnescape(segs[i])
		if err != nil {
			return nil, false
		}
		if want == "" {
			vars = append(vars, got)
			continue
		}
		if !strings.EqualFold(got, want) {
			return nil, false
		}
	}
	return vars, true
}

// inLocalNamespace: the paths the auth server answers itself, in Match form.
func inLocalNamespace(m string) bool {
	switch m {
	case "/login", "/logout", "/register", "/healthz", "/readyz", "/generate_token", "/favicon.ico":
		return true
	}
	return hasPrefix(m, "/mss-login") || hasPrefix(m, "/api/mss-login")
}
