package authserver

import (
	"cmp"
	"net/http"
	"net/url"
	"strings"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/authserver/policy"
)

// Forward-auth endpoints let a gateway that already proxies ComfyUI ask for a decision:
//
//	/mss-login/authz/auth-request   nginx auth_request (X-Original-Method, X-Original-URL)
//	/mss-login/authz/forward-auth   Traefik / Caddy ForwardAuth (X-Forwarded-Method/-Proto/-Host/-Uri)
//	/mss-login/authz/ext-authz/...  Envoy HTTP ext_authz (method and path_prefix + original path)
//
// They answer 200 with the identity headers, 401 or 403, with the same normalisation, policy and
// IP checks as the proxy. The gateway must be listed in trusted_proxies for its forwarded
// headers (and so the client address) to be believed; otherwise the answer is 403.
const authzPrefix = "/mss-login/authz"

func (s *Server) handleForwardAuth(w http.ResponseWriter, r *http.Request) {
	rq := reqInfo(r)
	peer := ipaccess.PeerAddr(r.RemoteAddr)
	method, target, host, ok := originalRequest(r, rq.route)
	if !ok || !s.resolver.Trusts(peer) {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "forward-auth needs a trusted gateway and the original request",
			"code": "FORWARD_AUTH_UNTRUSTED"})
		return
	}
	u, err := url.ParseRequestURI(target)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unreadable original URL", "code": "BAD_PATH"})
		return
	}
	p, err := policy.Normalize(u.EscapedPath())
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "malformed request path", "code": "BAD_PATH"})
		return
	}
	d := s.policy.Decide(method, p)
	if d.Gateway {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "the original request cannot be forward auth itself", "code": "BAD_PATH"})
		return
	}
	now := s.now()
	// The gateway passes the original request's headers: its credential is the one this
	// request carried, else (a WebSocket client) the token in the original URL's query.
	var id identity
	hasID, viaCookie := rq.id != nil, rq.viaCookie
	if hasID {
		id = *rq.id
	} else if rq.token == "" { // like the proxy: a credential that did not authenticate is not replaced
		token, _ := credential(nil, nil, u.Query())
		id, hasID = s.authenticate(r.Context(), token, now)
		viaCookie = false
	}
	// Gateways drop Upgrade as a hop-by-hop header; the handshake's own headers stay.
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket") || r.Header.Get("Sec-Websocket-Key") != "" ||
		r.Header.Get("Sec-Fetch-Mode") == "websocket"
	// The body is not passed (proxy_pass_request_body off): a rule that depends on it is
	// decided as if the body wrote every setting (settingsBody nil).
	v := s.decide(check{ip: rq.ip, device: rq.device, method: method, decision: d, id: id, hasID: hasID,
		viaCookie: viaCookie, upgrade: upgrade, now: now,
		sameOrigin: (safeMethod(method) && !upgrade) || sameOriginHost(r.Header, host, s.hostBase())})
	switch {
	case v.status == http.StatusUnauthorized:
		s.metrics.auth.WithLabelValues(v.reason).Inc()
		// nginx cannot follow a redirect from auth_request: it reads Location from the 401.
		w.Header().Set("Location", "/login?next="+url.QueryEscape(p.Forward))
		writeJSON(w, v.status, map[string]any{"error": v.message, "code": v.code})
		return
	case v.status != 0:
		s.metrics.auth.WithLabelValues(v.reason).Inc()
		writeJSON(w, v.status, map[string]any{"error": v.message, "code": v.code})
		return
	}
	if v.authed {
		s.touch(&v.id, now)
		w.Header().Set("Comfy-User", s.comfyUserID(r.Context(), v.id.user.Username))
		w.Header().Set("X-Mss-Login-User", v.id.user.Username)
		w.Header().Set("X-Mss-Login-Role", v.id.role.Name)
	}
	w.Header().Set("X-Mss-Login-Path", p.Forward)
	w.WriteHeader(http.StatusOK)
}

// originalRequest reads the gateway's description of the request being authorised: its method,
// request URI and host (for the origin check).
// The mode is the route that matched, never a suffix of the path (an ext-authz path may end in
// "/auth-request").
func originalRequest(r *http.Request, route string) (method, target, host string, ok bool) {
	host = r.Host
	switch route {
	case authzPrefix + "/auth-request":
		method = r.Header.Get("X-Original-Method")
		if u, err := url.Parse(r.Header.Get("X-Original-URL")); err == nil && u.Path != "" {
			target = u.RequestURI()
			host = cmp.Or(u.Host, host)
		}
	case authzPrefix + "/forward-auth":
		method, target = r.Header.Get("X-Forwarded-Method"), r.Header.Get("X-Forwarded-Uri")
		host = cmp.Or(r.Header.Get("X-Forwarded-Host"), host)
	case authzPrefix + "/ext-authz/":
		// What follows the three segments of the prefix, however they were spelled.
		method, target = r.Method, "/"
		if parts := strings.SplitN(r.URL.RequestURI(), "/", 5); len(parts) == 5 {
			target += parts[4]
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	return method, target, host, target != "" && target[0] == '/'
}
