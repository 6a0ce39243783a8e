package policy

import (
	"strings"

	"github.com/mss-login/mss-login/internal/roles"
)

// Access is what a request needs.
type Access int

const (
	// Public needs nothing (login page, static assets of the auth server, health).
	Public Access = iota
	// Authenticated needs any logged-in user.
	Authenticated
	// Permission needs the named flag of the user's role (the owner has every flag).
	Permission
	// Admin needs an admin (the admin role or the owner).
	Admin
)

func (a Access) String() string {
	return [...]string{"public", "authenticated", "permission", "admin"}[a]
}

// Rule is the decision for one request.
type Rule struct {
	Access     Access
	Permission string // with Access == Permission: a roles.* flag or a settings_* UI flag
	// Code and Message are the stable 403 answer (the original's codes where it had one).
	Code    string
	Message string
	// Local is true for requests the auth server answers itself (never forwarded).
	Local bool
}

func need(flag, code, msg string) Rule {
	return Rule{Access: Permission, Permission: flag, Code: code, Message: msg}
}

var (
	ruleRun       = need(roles.CanRun, "EXECUTION_DENIED", "MSS-Login: Execution Denied")
	ruleUpload    = need(roles.CanUpload, "UPLOAD_DENIED", "MSS-Login: Upload Denied")
	ruleAPI       = need(roles.CanAccessAPI, "API_DENIED", "MSS-Login: API Denied")
	ruleManager   = need(roles.CanAccessManager, "MANAGER_DENIED", "MSS-Login: Manager Denied")
	ruleExtension = need(roles.CanManageExtensions, "EXTENSIONS_DENIED", "MSS-Login: Extension Management Denied")
	ruleWorkflow  = need(roles.CanModifyWorkflows, "WORKFLOW_DENIED", "MSS-Login: Workflow Modification Denied")
	ruleAdmin     = Rule{Access: Admin, Code: "ADMIN_REQUIRED", Message: "MSS-Login: Admin Required"}
	ruleUser      = Rule{Access: Authenticated}
)

// extensionBlocks is the original's EXTENSION_BLOCK_MAP for third-party extensions: a role whose
// settings_* flag is explicitly false may not reach that extension's script or API.
var extensionBlocks = []struct {
	flag     string
	prefixes []string // in Match form: lower-case, without the /api prefix
}{
	{"settings_itools", []string{"/extensions/comfyui-itools", "/itools"}},
	{"settings_crystools", []string{"/extensions/comfyui-crystools", "/crystools"}},
	{"settings_rgthree", []string{"/extensions/rgthree-comfy", "/rgthree"}},
	{"settings_gallery", []string{"/extensions/comfyui-gallery", "/gallery"}},
}

// managerPrefixes are ComfyUI-Manager's page, script and API routes.
var managerPrefixes = []string{"/manager", "/extensions/comfyui-manager", "/customnode", "/externalmodel",
	"/snapshot", "/comfyui_manager"}

// apiRoots are ComfyUI's API routes (served both bare and under /api/): data, not page assets.
var apiRoots = map[string]bool{
	"prompt": true, "queue": true, "history": true, "object_info": true, "view": true, "view_metadata": true,
	"models": true, "embeddings": true, "upload": true, "userdata": true, "v2": true, "users": true,
	"settings": true, "system_stats": true, "interrupt": true, "free": true, "experiment": true,
	"internal": true, "i18n": true, "workflow_templates": true, "features": true, "ws": true,
	"extensions": true,
}

// Decide returns what a request with this method and normalised path needs. It is total: every
// path gets a rule, and anything not listed needs at least a logged-in user.
func Decide(method string, p Path) Rule {
	m := p.Match
	write := method != "GET" && method != "HEAD" && method != "OPTIONS"

	// The auth server's own routes. Every one of them is in this table too (the original let
	// its /mss-login handlers check for themselves, and several forgot).
	if r, ok := decideLocal(method, m); ok {
		r.Local = true
		return r
	}

	// ComfyUI: the same route bare and under /api/.
	apiPrefixed := m == "/api" || strings.HasPrefix(m, "/api/")
	r := strings.TrimPrefix(m, "/api")
	if r == "" {
		r = "/"
	}
	// Raw prefixes, as the original matched them: anything that starts like the extension.
	for _, b := range extensionBlocks {
		for _, p := range b.prefixes {
			if strings.HasPrefix(r, p) {
				return need(b.flag, "EXTENSION_BLOCKED", "MSS-Login: Extension Blocked")
			}
		}
	}
	for _, p := range managerPrefixes {
		if strings.HasPrefix(r, p) {
			return ruleManager
		}
	}
	switch {
	case hasPrefix(r, "/prompt"), hasPrefix(r, "/queue"), hasPrefix(r, "/interrupt"), hasPrefix(r, "/free"):
		if write {
			return ruleRun
		}
		return ruleAPI
	case hasPrefix(r, "/upload"):
		return ruleUpload
	case hasPrefix(r, "/extensions/apply"), strings.HasPrefix(r, "/comfy.extension"):
		return ruleExtension
	case strings.HasPrefix(r, "/settings/comfy.extension"), strings.HasPrefix(r, "/settings/comfy/extension"):
		if write {
			return ruleExtension
		}
		return ruleAPI
	case hasPrefix(r, "/userdata") && write && touchesWorkflows(r):
		return ruleWorkflow
	case r == "/users" && write:
		// ComfyUI's --multi-user creates users here; mss-login owns the users.
		return ruleAdmin
	}
	if apiPrefixed || apiRoots[firstSegment(r)] {
		return ruleAPI
	}
	// Page and script assets of the ComfyUI front end.
	return ruleUser
}

// touchesWorkflows reports whether a /userdata path names something under workflows/, in any
// segment (a move's destination included).
func touchesWorkflows(r string) bool {
	rest := strings.TrimPrefix(r, "/userdata")
	for _, s := range strings.Split(rest, "/") {
		if s == "workflows" {
			return true
		}
	}
	return false
}

func decideLocal(method, m string) (Rule, bool) {
	switch m {
	case "/login", "/register", "/logout", "/healthz", "/readyz", "/mss-login/api/news/feed.xml",
		"/api/mss-login/api/news/feed.xml", "/mss-login/api/mfa/verify", "/mss-login/api/mfa/setup",
		"/mss-login/api/mfa/verify-setup", "/api/mss-login/recovery/reset-mfa",
		"/mss-login/api/is-https":
		// Each handler applies its own precondition (first run, a challenge, recovery mode and
		// host, same-origin logout): the caller is not yet logged in.
		return Rule{Access: Public}, true
	}
	if m == "/mss-login/generate_token" || m == "/generate_token" || m == "/api/mss-login/generate_token" {
		// Scripts send username and password here, as to the original; the handler checks them.
		return Rule{Access: Public}, true
	}
	if hasPrefix(m, "/mss-login/static") || hasPrefix(m, "/mss-login/authz") {
		// Forward-auth endpoints decide the gateway's original request with this same policy.
		return Rule{Access: Public}, true
	}
	// The /api/mss-login/... aliases of the original map onto the same rules.
	m = strings.TrimPrefix(m, "/api")
	if !hasPrefix(m, "/mss-login") && !hasPrefix(m, "/generate_token") {
		return Rule{}, false
	}
	switch {
	case hasPrefix(m, "/mss-login/api/users"), hasPrefix(m, "/mss-login/api/ip-lists"),
		hasPrefix(m, "/mss-login/api/update-status"), hasPrefix(m, "/mss-login/api/admin"),
		hasPrefix(m, "/mss-login/api/audit"):
		return ruleAdmin, true
	case m == "/mss-login/api/groups":
		if method == "GET" || method == "HEAD" {
			return ruleUser, true
		}
		return ruleAdmin, true
	}
	// Everything else of the auth server (me, tokens, sessions, account, MFA setup, token
	// creation) serves the logged-in user; handlers check ownership and extra flags.
	return ruleUser, true
}

// hasPrefix matches whole segments: "/manager" matches "/manager" and "/manager/x", not "/managers".
func hasPrefix(path, prefix string) bool {
	if !strings.HasPrefix(path, prefix) {
		return false
	}
	return len(path) == len(prefix) || path[len(prefix)] == '/'
}

func firstSegment(r string) string {
	r = strings.TrimPrefix(r, "/")
	if i := strings.IndexByte(r, '/'); i >= 0 {
		return r[:i]
	}
	return r
}
