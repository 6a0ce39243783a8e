package policy

import (
	"encoding/json"
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
	// SettingsBody: the rule depends on the keys of the JSON body (ComfyUI's bulk POST
	// /settings writes the same settings the per-key route gates); see SettingsRule.
	SettingsBody bool
	// Gateway marks the forward-auth endpoints: the request is the gateway's, and the endpoint
	// decides the original request it describes (cross-site checks included).
	Gateway bool
	// Asset marks the auth server's own static files (stylesheet, icon): served to every
	// address, a refused one included, since they hold nothing and the refusal page needs them.
	Asset bool
}

func need(flag, code, msg string) Rule {
	return Rule{Access: Permission, Permission: flag, Code: code, Message: msg}
}

// The rules the auth server's own route table uses.
var (
	PublicRule = Rule{Access: Public}
	UserRule   = Rule{Access: Authenticated}
	AdminRule  = Rule{Access: Admin, Code: "ADMIN_REQUIRED", Message: "MSS-Login: Admin Required"}
)

var (
	ruleRun       = need(roles.CanRun, "EXECUTION_DENIED", "MSS-Login: Execution Denied")
	ruleUpload    = need(roles.CanUpload, "UPLOAD_DENIED", "MSS-Login: Upload Denied")
	ruleAPI       = need(roles.CanAccessAPI, "API_DENIED", "MSS-Login: API Denied")
	ruleManager   = need(roles.CanAccessManager, "MANAGER_DENIED", "MSS-Login: Manager Denied")
	ruleExtension = need(roles.CanManageExtensions, "EXTENSIONS_DENIED", "MSS-Login: Extension Management Denied")
	ruleWorkflow  = need(roles.CanModifyWorkflows, "WORKFLOW_DENIED", "MSS-Login: Workflow Modification Denied")
	ruleConsole   = need(roles.CanViewConsole, "CONSOLE_DENIED", "MSS-Login: Console Denied")
	// Unloading models and freeing memory affects every user's running work.
	ruleFree = need(roles.CanViewAllComfyUIItems, "FREE_DENIED", "MSS-Login: Freeing memory affects everyone's work")
)

// extensionBlocks is the original's EXTENSION_BLOCK_MAP for third-party extensions: a role whose
// settings_* flag is explicitly false may not reach that extension's script or API.
var extensionBlocks = []struct {
	flag     string
	prefixes []string // in route form: lower-case, without any /api or version prefix
}{
	{"settings_itools", []string{"/extensions/comfyui-itools", "/itools"}},
	{"settings_crystools", []string{"/extensions/comfyui-crystools", "/crystools"}},
	{"settings_rgthree", []string{"/extensions/rgthree-comfy", "/rgthree"}},
	{"settings_gallery", []string{"/extensions/comfyui-gallery", "/gallery"}},
}

// managerPrefixes are ComfyUI-Manager's page, script and API route families: v3 serves them bare
// (/manager/…), 4.x under /v2 (/v2/manager/…), ComfyUI repeats every one under /api. Matched as
// raw prefixes of the route, so "/manager-x" and "/extensions/comfyui-manager-legacy" are in too.
var managerPrefixes = []string{"/manager", "/extensions/comfyui-manager", "/customnode", "/externalmodel",
	"/snapshot", "/comfyui_manager"}

// apiRoots are ComfyUI's API routes served both bare and under /api/: data, not page assets.
// (Its /api/assets, /api/tags and /api/jobs exist only under /api, and /assets/… bare is the
// front end's scripts.)
var apiRoots = map[string]bool{
	"prompt": true, "queue": true, "history": true, "object_info": true, "view": true, "view_metadata": true,
	"models": true, "embeddings": true, "upload": true, "userdata": true, "users": true, "jobs": true,
	"settings": true, "system_stats": true, "interrupt": true, "free": true, "experiment": true,
	"internal": true, "i18n": true, "workflow_templates": true, "features": true, "ws": true,
	"extensions": true, "global_subgraphs": true, "node_replacements": true,
}

// Route strips the prefixes a ComfyUI route family can be served under — "/api" (ComfyUI repeats
// every route there), version segments "/v1", "/v2", … (ComfyUI-Manager 4.x, ComfyUI's
// /v2/userdata), in any number and order — and reports whether there were any. Deciding on the
// stripped route means a new prefix, or a combination such as /api/v2/api, cannot open a family.
func Route(match string) (route string, prefixed bool) {
	r := match
	for {
		seg := firstSegment(r)
		if seg != "api" && !isVersion(seg) {
			break
		}
		prefixed = true
		r = r[1+len(seg):]
		if r == "" {
			r = "/"
		}
	}
	return r, prefixed
}

// isVersion: "v" and one or more digits.
func isVersion(seg string) bool {
	if len(seg) < 2 || seg[0] != 'v' {
		return false
	}
	for i := 1; i < len(seg); i++ {
		if seg[i] < '0' || seg[i] > '9' {
			return false
		}
	}
	return true
}

// decideComfy returns what a request for a ComfyUI route needs. It is total: every path gets a
// rule, and anything not listed needs at least a logged-in user.
func decideComfy(method string, p Path) Rule {
	write := method != "GET" && method != "HEAD" && method != "OPTIONS"
	r, prefixed := Route(p.Match)
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
	case hasPrefix(r, "/free") && write:
		return ruleFree
	case hasPrefix(r, "/prompt"), hasPrefix(r, "/queue"), hasPrefix(r, "/interrupt"), hasPrefix(r, "/free"),
		hasPrefix(r, "/jobs"):
		if write {
			return ruleRun
		}
		return ruleAPI
	case hasPrefix(r, "/upload"), hasPrefix(r, "/assets") && write:
		return ruleUpload
	case hasPrefix(r, "/extensions/apply"), strings.HasPrefix(r, "/comfy.extension"):
		return ruleExtension
	case r == "/settings" && write:
		return Rule{Access: Permission, Permission: roles.CanAccessAPI, Code: ruleAPI.Code, Message: ruleAPI.Message, SettingsBody: true}
	case strings.HasPrefix(r, "/settings/"):
		return settingRule(strings.TrimPrefix(r, "/settings/"), write)
	case hasPrefix(r, "/userdata") && write && touchesSettingsFile(r):
		// comfy.settings.json holds every setting, the extension ones included.
		return ruleExtension
	case hasPrefix(r, "/userdata") && write && touchesWorkflows(r):
		return ruleWorkflow
	case r == "/users" && write:
		// ComfyUI's --multi-user creates users here; mss-login owns the users.
		return AdminRule
	case hasPrefix(r, "/internal/logs"):
		// ComfyUI's terminal output: every user's prompts and errors.
		return ruleConsole
	}
	if prefixed || apiRoots[firstSegment(r)] {
		return ruleAPI
	}
	// Page and script assets of the ComfyUI front end.
	return UserRule
}

// settingRule is the rule for writing (or reading) one ComfyUI setting by its id.
func settingRule(id string, write bool) Rule {
	id = strings.ToLower(id)
	if write && (strings.HasPrefix(id, "comfy.extension") || strings.HasPrefix(id, "comfy/extension")) {
		return ruleExtension
	}
	return ruleAPI
}

// SettingsRule decides ComfyUI's bulk POST /settings from its body: the strictest rule of the
// keys it writes, as if each were written through /settings/{id}. A body that is not a JSON
// object is decided as if it wrote every setting (fail closed).
func SettingsRule(body []byte) Rule {
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil || keys == nil {
		return ruleExtension
	}
	for k := range keys {
		if r := settingRule(k, true); r.Permission != roles.CanAccessAPI {
			return r
		}
	}
	return ruleAPI
}

// touchesWorkflows reports whether a /userdata path names something under workflows/, in any
// segment (a move's destination included), or a name some file system may read as another
// (a trailing dot or space, "~", ":"): those are decided as workflows too (fail closed).
func touchesWorkflows(r string) bool {
	rest := strings.TrimPrefix(r, "/userdata")
	for _, s := range strings.Split(rest, "/") {
		if s == "workflows" || strings.ContainsAny(s, "~:") || strings.HasSuffix(s, ".") || strings.HasSuffix(s, " ") {
			return true
		}
	}
	return false
}

// touchesSettingsFile reports whether a /userdata path names the user's comfy.settings.json.
func touchesSettingsFile(r string) bool {
	for _, s := range strings.Split(strings.TrimPrefix(r, "/userdata"), "/") {
		if strings.TrimRight(s, ". ") == "comfy.settings.json" {
			return true
		}
	}
	return false
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
