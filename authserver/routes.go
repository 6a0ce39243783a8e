package authserver

import (
	"net/http"

	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/roles"
)

// route is one of the auth server's own endpoints: what it needs and what serves it. This table
// is the only list of them: the policy (policy.New) and the dispatch (serveLocal) are both built
// from it, so no endpoint is served without a rule.
type route struct {
	method, path string
	rule         policy.Rule
	handler      http.HandlerFunc
}

// The rules of the table: public routes apply their own precondition in the handler (first run,
// a challenge, recovery mode and host, same-origin logout): the caller is not yet logged in.
var (
	public  = policy.PublicRule
	user    = policy.UserRule // handlers check ownership and extra flags
	admin   = policy.AdminRule
	gateway = policy.Rule{Access: policy.Public, Gateway: true}
	asset   = policy.Rule{Access: policy.Public, Asset: true}
	sharing = policy.Rule{Access: policy.Permission, Permission: roles.CanManageModelSharing,
		Code: "MODEL_SHARING_DENIED", Message: "MSS-Login: Model Sharing Denied"}
	downloads = policy.Rule{Access: policy.Permission, Permission: roles.CanDownloadModels,
		Code: "MODEL_DOWNLOAD_DENIED", Message: "MSS-Login: Model Downloads Denied"}
)

func (s *Server) routeTable() []route {
	t := []route{
		{"GET", "/login", public, s.handleLoginPage},
		{"POST", "/login", public, s.handleLogin},
		{"GET", "/logout", public, s.handleLogout},
		{"POST", "/logout", public, s.handleLogout},
		{"GET", "/mss-login/downloads", downloads, s.handleDownloadsPage},
		{"POST", "/mss-login/downloads", downloads, s.handleDownloadsPage},
		{"GET", downloadsPrefix + "/sources", downloads, s.handleDownloadSources},
		{"GET", downloadsPrefix + "/folders", downloads, s.handleDownloadFolders},
		{"GET", downloadsPrefix + "/api-keys", downloads, s.handleDownloadKeys},
		{"PUT", downloadsPrefix + "/api-keys", downloads, s.handleDownloadKeys},
		{"POST", downloadsPrefix + "/api-keys", downloads, s.handleDownloadKeys},
		{"POST", downloadsPrefix + "/download", downloads, s.handleDownload},
		{"GET", downloadsPrefix + "/jobs", downloads, s.handleDownloadJobs},
		{"GET", downloadsPrefix + "/jobs/{id}", downloads, s.handleDownloadJob},
		{"POST", downloadsPrefix + "/jobs/{id}/cancel", downloads, s.handleDownloadCancel},
		{"GET", ssoLogin, public, s.handleSSOLogin},
		{"GET", ssoCallback, public, s.handleSSOCallback},
		{"GET", "/register", public, s.handleRegister},
		{"POST", "/register", public, s.handleRegister},
		{"GET", "/healthz", public, func(w http.ResponseWriter, _ *http.Request) { writeJSON(w, 200, map[string]string{"status": "ok"}) }},
		{"GET", "/readyz", public, s.handleReady},
		{"GET", "/mss-login/static/", asset, staticHandler().ServeHTTP},
		{"GET", "/favicon.ico", asset, serveFavicon},
		{"GET", "/mss-login/api/is-https", public, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]bool{"is_https": reqInfo(r).https})
		}},
		// Scripts send username and password here, as to the original; the handler checks them.
		{"POST", "/generate_token", public, s.handleCreateToken},
		{"POST", "/api/mss-login/recovery/reset-mfa", public, s.handleRecovery},
		{"GET", "/mss-login/account", user, s.handleAccount},
		{"POST", "/mss-login/account/password", user, s.handleAccountPassword},
		{"POST", "/mss-login/account/tokens", user, s.handleAccountToken},
		{"POST", "/mss-login/account/{kind}/{id}/revoke", user, s.handleAccountRevoke},
		{"POST", "/mss-login/account/mfa", user, s.handleAccountMFA},
		{"GET", "/mss-login/admin", admin, s.handleConsole},
		{"GET", "/mss-login/admin/users", admin, s.handleConsoleUsers},
		{"POST", "/mss-login/admin/users/{username}", admin, s.handleConsoleUser},
		{"GET", "/mss-login/admin/audit", admin, s.handleConsoleAudit},
		{"GET", "/mss-login/admin/status", admin, s.handleConsoleStatus},
		{"GET", "/mss-login/admin/export/{kind}/{name}", admin, s.handleConsoleExport},
		{"GET", "/mss-login/admin/roles", admin, s.handleConsoleRoles},
		{"POST", "/mss-login/admin/roles/{name}", admin, s.handleConsoleRole},
		{"GET", "/mss-login/admin/ip", admin, s.handleConsoleIP},
		{"GET", "/mss-login/admin/access", admin, s.handleConsoleAccess},
		{"POST", "/mss-login/admin/access", admin, s.handleConsoleRevoke},
		{"POST", "/mss-login/admin/ip", admin, s.handleConsoleIPAction},
		{"GET", "/mss-login/admin/grants/{username}", admin, s.handleConsoleGrants},
		{"POST", "/mss-login/admin/grants/{username}", admin, s.handleConsoleGrant},
		// Forward-auth endpoints decide the gateway's original request with this same policy.
		{"", authzPrefix + "/auth-request", gateway, s.handleForwardAuth},
		{"", authzPrefix + "/forward-auth", gateway, s.handleForwardAuth},
		{"", authzPrefix + "/ext-authz/", gateway, s.handleForwardAuth},
	}
	// The original's routes, also under its /api/mss-login/… aliases.
	for _, prefix := range []string{"", "/api"} {
		p := prefix + "/mss-login"
		t = append(t,
			route{"GET", p + "/api/me", user, s.handleMe},
			route{"GET", p + "/api/tokens", user, s.handleListTokens},
			route{"POST", p + "/api/tokens", user, s.handleCreateToken},
			route{"DELETE", p + "/api/tokens/{id}", user, s.handleRevokeToken},
			route{"POST", p + "/generate_token", public, s.handleCreateToken},
			route{"GET", p + "/api/sessions", user, s.handleListSessions},
			route{"DELETE", p + "/api/sessions/{jti}", user, s.handleRevokeSession},
			route{"POST", p + "/api/password", user, s.handleChangePassword},
			route{"GET", p + "/api/groups", user, s.handleGroups},
			route{"GET", p + "/api/users", admin, s.handleListUsers},
			route{"POST", p + "/api/users", admin, s.handleRegister},
			route{"PUT", p + "/api/users/{username}", admin, s.handleUpdateUser},
			route{"DELETE", p + "/api/users/{username}", admin, s.handleDeleteUser},
			route{"GET", p + "/api/users/{username}/shared-items", sharing, s.handleListGrants},
			route{"POST", p + "/api/users/{username}/shared-items", sharing, s.handleAddGrant},
			route{"DELETE", p + "/api/users/{username}/shared-items", sharing, s.handleDeleteGrant},
			route{"GET", p + "/api/ip-lists", admin, s.handleIPLists},
			route{"GET", p + "/api/update-status", admin, s.handleUpdateStatus},
			route{"GET", p + "/api/audit", admin, s.handleAudit},
			route{"POST", p + "/api/mfa/setup", public, s.mfaOnly(s.handleMFASetup)},
			route{"POST", p + "/api/mfa/verify-setup", public, s.mfaOnly(s.handleMFAVerifySetup)},
			route{"POST", p + "/api/mfa/verify", public, s.mfaOnly(s.handleMFAVerify)},
			route{"DELETE", p + "/api/mfa", user, s.handleMFADisable},
			route{"GET", p + "/api/news/feed.xml", public, s.handleNewsFeed},
		)
	}
	return t
}

// localPolicy builds the policy from the route table.
func localPolicy(t []route) *policy.Policy {
	locals := make([]policy.LocalRoute, len(t))
	for i, r := range t {
		locals[i] = policy.LocalRoute{Method: r.method, Path: r.path, Rule: r.rule}
	}
	return policy.New(locals)
}

// serveLocal answers a request for one of the auth server's own routes, as decided.
func (s *Server) serveLocal(w http.ResponseWriter, r *http.Request, d policy.Decision) {
	switch {
	case d.Route >= 0:
		for i, name := range d.Names {
			r.SetPathValue(name, d.Vars[i])
		}
		reqInfo(r).route = s.routes[d.Route].path
		if r.Method == http.MethodHead {
			r.Method = http.MethodGet // the GET handler, which must not take HEAD for a state change (net/http drops the body)
		}
		s.routes[d.Route].handler(w, r)
	case d.WrongMethod:
		writeError(w, r, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "Method not allowed.")
	default:
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", "Not found.")
	}
}
