package authserver

import (
	"errors"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// identityHeaders are removed from every request before it goes upstream: only the auth server
// says who the user is (ComfyUI's --multi-user trusts comfy-user). Cookie goes too: it is
// rebuilt from the parsed cookies without the session cookie.
var identityHeaders = map[string]bool{
	"Comfy-User": true, "X-Forwarded-User": true, "X-Forwarded-Email": true, "X-Forwarded-Preferred-Username": true,
	"X-Forwarded-Groups": true, "X-Remote-User": true, "Remote-User": true, "X-User": true, "X-Auth-User": true,
	"X-Mss-Login-User": true, "X-Mss-Login-Role": true, "Authorization": true, "Cookie": true,
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
		FlushInterval:  0,
		ModifyResponse: s.filterAnswer,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if r.Context().Err() != nil {
				return // the client went away
			}
			if errors.Is(err, errFilter) {
				s.log.Error("an answer to filter to the caller's prompts could not be filtered; nothing of it was sent",
					"path", reqInfo(r).path.Forward, "error", err)
				writeError(w, r, http.StatusBadGateway, "FILTER_FAILED", "ComfyUI's answer could not be limited to your prompts.")
				return
			}
			s.log.Warn("upstream request failed", "path", reqInfo(r).path.Forward, "error", err)
			writeError(w, r, http.StatusBadGateway, "UPSTREAM_UNAVAILABLE",
				"ComfyUI is not reachable at the moment. Try again shortly.")
		},
	}
}

// rewrite sends the normalised path (the one the policy decided on), the query and cookies as
// authentication parsed them without the credential, no identity header of the client's, and
// the identity from the session.
func (s *Server) rewrite(pr *httputil.ProxyRequest) {
	rq := reqInfo(pr.In)
	pr.SetURL(s.upstream)
	out := pr.Out
	base := strings.TrimSuffix(s.upstream.Path, "/")
	out.URL.Path = base + mustUnescape(rq.path.Forward)
	out.URL.RawPath = base + rq.path.Forward
	out.URL.RawQuery = rq.upstreamQuery(pr.In)
	out.Host = pr.In.Host // ComfyUI checks Origin against Host for its own CSRF guard
	for k := range out.Header {
		// One pass over the header map (keys are canonical here): the client's identity
		// headers, X-Auth-Request-*, Authorization and every Cookie line go.
		if identityHeaders[k] || strings.HasPrefix(k, "X-Auth-Request-") {
			delete(out.Header, k)
		}
	}
	if c := upstreamCookies(rq.cookies); c != "" {
		out.Header["Cookie"] = []string{c}
	}
	// The client address the auth server decided on, not the chain the client sent.
	out.Header["X-Forwarded-For"] = []string{rq.ip.String()}
	if rq.id != nil {
		v := [3]string{rq.comfyUser, rq.id.user.Username, rq.id.role.Name} // one allocation for the three
		out.Header["Comfy-User"], out.Header["X-Mss-Login-User"], out.Header["X-Mss-Login-Role"] = v[0:1:1], v[1:2:2], v[2:3:3]
	}
}

func mustUnescape(p string) string {
	u, err := url.PathUnescape(p)
	if err != nil {
		return p
	}
	return u
}

// upstreamCookies is one Cookie line of the parsed cookies without the session cookie.
func upstreamCookies(cookies []*http.Cookie) string {
	var b strings.Builder
	for _, c := range cookies {
		if c.Name == cookieName {
			continue
		}
		if b.Len() > 0 {
			b.WriteString("; ")
		}
		b.WriteString(c.String())
	}
	return b.String()
}

// forward proxies a request; an upgrade (ComfyUI's /ws) is tracked so it can be closed when
// its identity loses access.
func (s *Server) forward(w http.ResponseWriter, r *http.Request, rq *request) {
	if rq.id != nil {
		rq.comfyUser = s.comfyUserID(r.Context(), rq.id.user.Username)
	}
	if !s.isolate(w, r, rq) {
		return
	}
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		s.proxy.ServeHTTP(w, r)
		return
	}
	so := &socket{id: rq.id, ip: rq.ip, device: rq.device, method: r.Method, path: rq.path}
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
