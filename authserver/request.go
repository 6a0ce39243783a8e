package authserver

import (
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"

	"github.com/mss-login/mss-login/authserver/policy"
)

// What the middleware establishes about a request: its credentials, device and origin.

// request is what the middleware established about a request.
type request struct {
	ip        netip.Addr
	https     bool
	path      policy.Path
	rule      policy.Rule
	id        *identity // &idv when authenticated, else nil
	idv       identity
	rec       statusRecorder
	device    string
	comfyUser string     // the comfy-user header sent upstream (ComfyUI's --multi-user id)
	filter    comfyRoute // an answer filtered to the caller's prompts (routeOther: none)
	models    *modelView // the models the caller may see, on model routes (nil: all)
	route     string     // the path of the auth server's own route that matched
	// The request's credentials as authentication read them; what goes upstream is rebuilt
	// from these parsed forms, never patched on the raw header or query string.
	cookies    []*http.Cookie // from every Cookie line
	query      url.Values     // decoded keys; nil without a query
	queryDirty bool           // the raw query differs from what goes upstream (a credential, or a pair that did not parse)
	token      string
	viaCookie  bool
}

// readCredentials parses the Cookie lines and the query once, for authentication, the device
// id and the upstream rewrite.
func (rq *request) readCredentials(r *http.Request) {
	if len(r.Header["Cookie"]) > 0 {
		rq.cookies = r.Cookies()
	}
	if r.URL.RawQuery != "" {
		q, err := url.ParseQuery(r.URL.RawQuery)
		rq.query, rq.queryDirty = q, err != nil
		for _, k := range tokenParams {
			if _, ok := q[k]; ok {
				rq.queryDirty = true
			}
		}
	}
	rq.token, rq.viaCookie = credential(r.Header, rq.cookies, rq.query)
	rq.device = deviceID(r.Header, rq.cookies)
}

// upstreamQuery is the query that goes upstream: the raw one when it is exactly its parsed form
// without credentials, else that form re-encoded.
func (rq *request) upstreamQuery(r *http.Request) string {
	if !rq.queryDirty {
		return r.URL.RawQuery
	}
	q := make(url.Values, len(rq.query))
	for k, v := range rq.query {
		if !slices.Contains(tokenParams, k) {
			q[k] = v
		}
	}
	return q.Encode()
}

type ctxKey struct{}

func reqInfo(r *http.Request) *request { return r.Context().Value(ctxKey{}).(*request) }

func safeMethod(m string) bool { return m == "GET" || m == "HEAD" || m == "OPTIONS" }

// sameOrigin: the request comes from a page of this site, or from no browser page at all.
func sameOrigin(r *http.Request, base string) bool { return sameOriginHost(r.Header, r.Host, base) }

// sameOriginHost: browsers send Origin on unsafe requests and upgrades (and Sec-Fetch-Site); it
// must name host, or the host of the site's base URL. A request without either is not from a
// browser page.
func sameOriginHost(h http.Header, host, base string) bool {
	if site := h.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := h.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if base != "" {
		// Once the site's address is known, only it is this site: a Host header is the
		// client's to choose (DNS rebinding points another name at this server).
		b, err := url.Parse(base)
		return err == nil && strings.EqualFold(b.Host, u.Host)
	}
	return strings.EqualFold(u.Host, host)
}

func deviceID(h http.Header, cookies []*http.Cookie) string {
	if d := h["X-Device-Id"]; len(d) > 0 && d[0] != "" { // X-Device-ID in canonical form: no allocation
		return truncateString(d[0], 191)
	}
	for _, c := range cookies {
		if c.Name == "mss_login_device_id" {
			return truncateString(c.Value, 191)
		}
	}
	return ""
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
