package authserver

import (
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
	method, target, ok := originalRequest(r)
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
	now := s.now()
	if ipaccess.Decide(s.ipInput(rq.ip, rq.device, now)) != ipaccess.Allowed {
		writeJSON(w, http.StatusForbidden, map[string]any{"error": "Access denied", "code": "IP_DENIED"})
		return
	}
	rule := policy.Decide(method, p)
	id := rq.id
	if id == nil {
		// A WebSocket client may carry its token in the original URL's query.
		q := u.Query()
		for _, k := range []string{"token", "access_token"} {
			if t := q.Get(k); t != "" && id == nil {
				id = s.authenticate(r.Context(), t, now)
			}
		}
	}
	if rule.Access != policy.Public {
		if id == nil {
			s.metrics.auth.WithLabelValues("unauthenticated").Inc()
			// nginx cannot follow a redirect from auth_request: it reads Location from the 401.
			w.Header().Set("Location", "/login?next="+url.QueryEscape(p.Forward))
			writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "Authentication required.", "code": "UNAUTHENTICATED"})
			return
		}
		if !s.allowed(id, rule) {
			s.metrics.auth.WithLabelValues("forbidden").Inc()
			writeJSON(w, http.StatusForbidden, map[string]any{"error": rule.Message, "code": rule.Code})
			return
		}
	}
	if id != nil {
		w.Header().Set("Comfy-User", s.comfyUserID(r.Context(), id.user.Username))
		w.Header().Set("X-Mss-Login-User", id.user.Username)
		w.Header().Set("X-Mss-Login-Role", id.role.Name)
	}
	w.Header().Set("X-Mss-Login-Path", p.Forward)
	w.WriteHeader(http.StatusOK)
}

// originalRequest reads the gateway's description of the request being authorised.
func originalRequest(r *http.Request) (method, target string, ok bool) {
	path := r.URL.Path
	switch {
	case strings.HasSuffix(path, "/auth-request"):
		method = r.Header.Get("X-Original-Method")
		if u, err := url.Parse(r.Header.Get("X-Original-URL")); err == nil && u.Path != "" {
			target = u.RequestURI()
		}
	case strings.HasSuffix(path, "/forward-auth"):
		method, target = r.Header.Get("X-Forwarded-Method"), r.Header.Get("X-Forwarded-Uri")
	case strings.HasPrefix(path, authzPrefix+"/ext-authz/") || path == authzPrefix+"/ext-authz":
		method = r.Method
		target = strings.TrimPrefix(r.URL.RequestURI(), authzPrefix+"/ext-authz")
		if target == "" || target[0] != '/' {
			target = "/" + target
		}
	}
	if method == "" {
		method = http.MethodGet
	}
	return method, target, target != "" && target[0] == '/'
}
