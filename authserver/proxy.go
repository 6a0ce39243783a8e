package authserver

import (
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// identityHeaders are removed from every request before it goes upstream: only the auth server
// says who the user is (ComfyUI's --multi-user trusts comfy-user).
var identityHeaders = []string{
	"Comfy-User", "X-Forwarded-User", "X-Forwarded-Email", "X-Forwarded-Preferred-Username",
	"X-Forwarded-Groups", "X-Remote-User", "Remote-User", "X-User", "X-Auth-User",
	"X-Mss-Login-User", "X-Mss-Login-Role", "Authorization",
}

func (s *Server) newProxy() *httputil.ReverseProxy {
	// ComfyUI is one host: keep many idle connections to it (Go's default of 2 per host costs
	// nearly half the throughput under load).
	transport := &http.Transport{
		Proxy:                 nil,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          512,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		ResponseHeaderTimeout: 0, // /prompt and /view may take long; streaming is not buffered
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}
	s.comfyUsers = newComfyUsers(s.upstream.String(), transport)
	return &httputil.ReverseProxy{
		Rewrite:   s.rewrite,
		Transport: &timedTransport{RoundTripper: transport, observe: s.metrics.upstream.WithLabelValues("proxy")},
		// 0: ReverseProxy still flushes at once for responses of unknown length (streams) and
		// event streams; a fixed-size body goes out without a flush per write.
		FlushInterval: 0,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			s.log.Warn("upstream request failed", "path", reqInfo(r).path.Forward, "error", err)
			writeError(w, r, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE",
				"ComfyUI is not reachable at the moment. Try again shortly.")
		},
	}
}

// rewrite sends the normalised path (the one the policy decided on), strips every identity
// header and the credential, and sets the identity from the session.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	rq := reqInfo(pr.In)
	pr.SetURL(s.upstream)
	out := pr.Out
	base := strings.TrimSuffix(s.upstream.Path, "/")
	out.URL.Path = base + mustUnescape(rq.path.Forward)
	out.URL.RawPath = base + rq.path.Forward
	if strings.Contains(pr.In.URL.RawQuery, "token") {
		out.URL.RawQuery = stripTokenParams(pr.In.URL.Query()).Encode()
	}
	out.Host = pr.In.Host // ComfyUI checks Origin against Host for its own CSRF guard
	for _, h := range identityHeaders {
		out.Header.Del(h)
	}
	for k := range out.Header {
		if strings.HasPrefix(k, "X-Auth-Request-") { // keys are canonical here
			out.Header.Del(k)
		}
	}
	if strings.Contains(out.Header.Get("Cookie"), cookieName) {
		removeCookie(out, cookieName)
	}
	pr.SetXForwarded()
	if rq.id != nil {
		out.Header.Set("Comfy-User", rq.comfyUser)
		out.Header.Set("X-Mss-Login-User", rq.id.user.Username)
		out.Header.Set("X-Mss-Login-Role", rq.id.role.Name)
	}
}

func mustUnescape(p string) string {
	u, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return u
}

// stripTokenParams removes the credential from a query string so it never reaches ComfyUI
// (or its logs).
func stripTokenParams(q url.Values) url.Values {
	q.Del("token")
	q.Del("access_token")
	return q
}

func removeCookie(r *http.Request, name string) {
	cookies := r.Cookies()
	r.Header.Del("Cookie")
	for _, c := range cookies {
		if c.Name != name {
			r.AddCookie(c)
		}
	}
}

// forward proxies a request; an upgrade (ComfyUI's /ws) is tracked so it can be closed when
// its identity loses access.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.id != nil {
		rq.comfyUser = s.comfyUserID(r.Context(), rq.id.user.Username)
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.proxy.ServeHTTP(w, r)
		return
	}
	if !sameOrigin(r, s.hostBase()) {
		writeError(w, r, http.StatusForbidden, "CROSS_SITE", "WebSocket from another origin refused.")
		return
	}
	so := &socket{id: rq.id, ip: rq.ip}
	tracker := &hijackTracker{ResponseWriter: w, reg: s.sockets, s: so}
	s.proxy.ServeHTTP(tracker, r)
	s.sockets.remove(so)
}

// timedTransport records the upstream latency.
type timedTransport struct {
	http.RoundTripper
	observe prometheus.Observer
}

func (t *timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.RoundTripper.RoundTrip(r)
	t.observe.Observe(time.Since(start).Seconds())
	return resp, err
}
