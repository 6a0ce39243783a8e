// Package authserver is mss-login's auth server: a reverse proxy in front of ComfyUI (HTTP and
// WebSocket) that authenticates every request with one authenticator, decides it with one
// policy (authserver/policy), enforces IP rules and lockout (authserver/ipaccess), and serves
// login, registration, tokens and the mss-login API.
package authserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/crypt"
	"github.com/mss-login/mss-login/internal/listen"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

const cookieName = "jwt_token"

// Options configure a Server.
type Options struct {
	Config *config.Config
	Store  *store.Store
	Logger *slog.Logger
	// RefreshInterval is how often the change counters are polled (default 500 ms, so that a
	// change made anywhere is seen within the 2 s the design promises).
	RefreshInterval time.Duration
	// Now is the clock for sessions, tokens and lockouts (default the system clock, in UTC);
	// tests move it to cross idle and expiry limits.
	Now func() time.Time
	// DisableIsolation switches the keeping apart of ComfyUI users off. Tests only: it shows
	// that the isolation tests fail without it.
	DisableIsolation bool
}

// Server is the auth server. Create it with New and serve Handler (or call Run).
type Server struct {
	cfg         *config.Config
	db          *store.Store
	log         *slog.Logger
	cache       *cache
	signer      signer
	resolver    ipaccess.Resolver
	upstream    *url.URL
	proxy       *httputil.ReverseProxy
	sockets     *sockets
	comfyUsers  *comfyUsers
	metrics     *metrics
	security    *securityFile
	timing      *failureTiming
	prompts     *promptOwners
	previews    previews
	models      models
	noIsolation bool
	routes      []route
	policy      *policy.Policy
	idleTimeout time.Duration
	refresh     time.Duration
	now         func() time.Time
	// detectedBase is the host base URL stored or detected at run time (see hostbase.go).
	detectedBase atomic.Pointer[string]
}

// New builds a server from the configuration; the database must be migrated.
func New(ctx context.Context, o Options) (*Server, error) {
	cfg := o.Config
	if !cfg.SecretKey.IsSet() {
		return nil, errors.New("the auth server needs SECRET_KEY (it signs the sessions)")
	}
	key, err := crypt.SubKey(cfg.SecretKey.Reveal(), "mss-login-session-jwt-v1")
	if err != nil {
		return nil, err
	}
	up, err := url.Parse(cfg.UpstreamURL)
	if err != nil {
		return nil, fmt.Errorf("upstream_url: %w", err)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s := &Server{
		cfg: cfg, db: o.Store, log: log, signer: newSigner(key),
		resolver:    ipaccess.Resolver{Trusted: cfg.ParsedTrustedProxies(), Cloudflare: cfg.CloudflareProxy},
		upstream:    up,
		metrics:     newMetrics(),
		security:    &securityFile{path: cfg.DataDir + "/security.json", log: log},
		idleTimeout: time.Duration(cfg.SessionIdleRevokeMinutes) * time.Minute,
		refresh:     o.RefreshInterval,
		now:         func() time.Time { return time.Now().UTC() },
	}
	if s.refresh <= 0 {
		s.refresh = 500 * time.Millisecond
	}
	if o.Now != nil {
		s.now = func() time.Time { return o.Now().UTC() }
	}
	s.sockets = newSockets(s.metrics)
	s.prompts, s.noIsolation = &promptOwners{db: o.Store}, o.DisableIsolation
	s.models.seed, s.models.filtered = maphash.MakeSeed(), map[objectInfoKey][]byte{}
	if s.cache, err = newCache(ctx, o.Store, log); err != nil {
		return nil, err
	}
	s.timing = newFailureTiming(log)
	probe, err := password.Hash("mss-login-timing-probe")
	if err != nil {
		return nil, err
	}
	s.timing.learn(s.cache.get().usersByID, probe)
	s.cache.onChange = s.sweepSockets
	s.cache.onUsers = func(users map[string]store.User) {
		go s.timing.learn(users) // a new hash kind (an imported bcrypt account)
	}
	s.loadHostBase(ctx)
	s.proxy = s.newProxy()
	s.routes = s.routeTable()
	s.policy = localPolicy(s.routes)
	return s, nil
}

// Run serves the proxy on listen_address and /metrics on metrics_address until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	// Both sockets first: a taken port fails the start with a message naming its key and file.
	mainL, err := s.open("listen_address", s.cfg.ListenAddress)
	if err != nil {
		return err
	}
	metricsL, err := s.open("metrics_address", s.cfg.MetricsAddress)
	if err != nil {
		_ = mainL.Close()
		return err
	}
	main := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	metricsSrv := &http.Server{Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	go s.Background(ctx)
	errc := make(chan error, 2)
	go func() { errc <- main.Serve(mainL) }()
	go func() { errc <- metricsSrv.Serve(metricsL) }()
	s.log.Info("auth server listening", "address", mainL.Addr().String(), "metrics", metricsL.Addr().String(),
		"upstream", s.upstream.Redacted())
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = metricsSrv.Shutdown(shutdown)
	return main.Shutdown(shutdown)
}

// open listens on the address of a configuration key.
func (s *Server) open(key, addr string) (net.Listener, error) {
	file := s.cfg.File
	if file == "" {
		file = filepath.Join(s.cfg.DataDir, "config.json")
	}
	return listen.Open(addr, listen.Setting{Key: key, Source: s.cfg.Source(key), File: file})
}

// Background keeps the cache fresh and re-checks open WebSockets until ctx ends.
func (s *Server) Background(ctx context.Context) {
	go s.cache.run(ctx, s.refresh, 10*time.Second)
	tick := time.NewTicker(s.refresh)
	defer tick.Stop()
	prune := time.NewTicker(10 * time.Minute)
	defer prune.Stop()
	// ComfyUI's model listings, read and recorded (for the operator's grant counts) now and then
	// even while nobody asks for models.
	listings := time.NewTicker(inventoryRecord)
	defer listings.Stop()
	if !s.noIsolation {
		go func() { _, _ = s.inventory(ctx, true) }()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// Sessions expire and idle out without any write: check sockets on a timer too.
			s.sweepSockets()
		case <-prune.C:
			s.prunePrompts(ctx)
			s.pruneAudit(ctx)
		case <-listings.C:
			if !s.noIsolation {
				_, _ = s.inventory(ctx, true)
			}
		}
	}
}

// sweepSockets closes the sockets that the decision no longer allows: the same decision as for
// a new upgrade (IP rules, bans, the socket's device, the identity with its idle limit, the
// route's permission).
func (s *Server) sweepSockets() {
	now := s.now()
	s.sockets.sweep(func(so *socket) bool {
		if so.id != nil && so.id.sess != nil && so.id.sess.idle(now, s.idleTimeout) {
			s.cache.refreshLastUsed(context.Background(), so.id.jti, so.id.sess)
		}
		c := so.check(now)
		c.decision = s.policy.Decide(c.method, so.path)
		return s.decide(c).status == 0
	})
}

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

// ServeHTTP is the single entry point: every request, the auth server's own included, passes
// the same checks in the same order before anything else happens.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	peer := ipaccess.PeerAddr(r.RemoteAddr)
	rq := &request{ip: s.resolver.ClientIP(peer, r.Header), https: s.resolver.HTTPS(r, peer)}
	rq.readCredentials(r)
	setSecurityHeaders(w, rq.https && s.cfg.ForceHTTPS)
	rq.rec = statusRecorder{ResponseWriter: w, code: 200}
	rec := &rq.rec
	class := "proxy"
	defer func() { s.metrics.request(class, rec.code) }()

	if s.cfg.ForceHTTPS && !rq.https && r.Method == http.MethodGet {
		target := "https://" + r.Host + r.URL.RequestURI()
		http.Redirect(rec, r, target, http.StatusPermanentRedirect)
		return
	}
	raw := r.URL.EscapedPath()
	if r.URL.RawPath != "" {
		raw = r.URL.RawPath
	}
	p, err := policy.Normalize(raw)
	if err != nil {
		class = "rejected"
		writeError(rec, r, http.StatusBadRequest, "BAD_PATH", "Malformed request path.")
		return
	}
	rq.path = p
	d := s.policy.Decide(r.Method, p)
	upgrade := strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	c := check{ip: rq.ip, device: rq.device, method: r.Method, decision: d, viaCookie: rq.viaCookie, upgrade: upgrade, now: now}
	c.id, c.hasID = s.authenticate(r.Context(), rq.token, now)
	c.sameOrigin = (safeMethod(r.Method) && !upgrade) || sameOrigin(r, s.hostBase())
	if d.SettingsBody && c.hasID && plainJSON(r.Header) {
		// Read as ComfyUI will read it: a body in another charset or content encoding is not
		// read, and so decided as if it wrote every setting.
		if c.settingsBody, err = readBody(r, maxSettingsBody); err != nil {
			class = "rejected"
			writeError(rec, r, http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "The settings body is too large.")
			return
		}
	}
	v := s.decide(c)
	if v.status != 0 {
		class = "rejected"
		s.metrics.auth.WithLabelValues(v.reason).Inc()
		if v.status == http.StatusUnauthorized {
			s.unauthenticated(rec, r, rq, p)
			return
		}
		writeError(rec, r, v.status, v.code, v.message)
		return
	}
	rq.rule = v.rule
	if v.authed {
		rq.idv = v.id
		rq.id = &rq.idv
		rq.id.viaCookie = rq.viaCookie
		s.touch(rq.id, now)
		s.detectHostBase(r, rq.id)
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rq))
	if d.Local {
		class = "local"
		s.serveLocal(rec, r, d)
		return
	}
	s.forward(rec, r, rq)
}

// plainJSON: a body Go's and aiohttp's JSON readers see alike — UTF-8 (the default), not
// compressed. aiohttp decodes the charset the client names (utf-7 and unicode_escape too) and
// undoes Content-Encoding.
func plainJSON(h http.Header) bool {
	if ce := h.Get("Content-Encoding"); ce != "" && !strings.EqualFold(ce, "identity") {
		return false
	}
	if h.Get("Content-Type") == "" {
		return true
	}
	_, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	cs := strings.ToLower(params["charset"])
	return err == nil && (cs == "" || cs == "utf-8" || cs == "utf8")
}

// maxSettingsBody bounds the body of ComfyUI's bulk settings write, which is read before it is
// decided (all of a user's settings are a few kilobytes).
const maxSettingsBody = 1 << 20

// readBody reads the body up to limit and puts it back for the upstream.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errors.New("body too large")
	}
	r.Body = io.NopCloser(bytes.NewReader(b))
	return b, nil
}

// unauthenticated answers JSON 401 to API, WebSocket and non-HTML clients, and sends browser
// navigation to the login page with a same-origin next= path.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, rq *request, p policy.Path) {
	if isNavigation(r) && !strings.HasPrefix(p.Match, "/api/") && p.Match != "/ws" {
		next := p.Forward
		if q := rq.upstreamQuery(r); q != "" {
			next += "?" + q
		}
		http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusFound)
		return
	}
	writeError(w, r, http.StatusUnauthorized, "UNAUTHENTICATED", "Authentication required.")
}

// isNavigation: a browser loading a page (Sec-Fetch-Mode: navigate, or HTML wanted over JSON).
func isNavigation(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" {
		return false
	}
	if m := r.Header.Get("Sec-Fetch-Mode"); m != "" {
		return m == "navigate"
	}
	a := r.Header.Get("Accept")
	return strings.Contains(a, "text/html") && !strings.Contains(a, "application/json")
}

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

// The security headers' values, shared by every response instead of allocated for each. Each
// slice has len == cap, so an Add (the reverse proxy copying ComfyUI's own header of that name)
// makes a new array rather than writing into the shared one.
var (
	nosniff        = []string{"nosniff"}
	sameOriginOnly = []string{"same-origin"}
	hstsValue      = []string{"max-age=31536000"}
)

func setSecurityHeaders(w http.ResponseWriter, hsts bool) {
	h := w.Header()
	h["X-Content-Type-Options"] = nosniff
	h["Referrer-Policy"] = sameOriginOnly
	if hsts {
		h["Strict-Transport-Security"] = hstsValue
	}
}

type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.code = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// writeError answers an error as JSON, or as a small HTML page to a browser.
func writeError(w http.ResponseWriter, r *http.Request, code int, errCode, msg string) {
	if isNavigation(r) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Content-Security-Policy", pageCSP)
		w.WriteHeader(code)
		rq, _ := r.Context().Value(ctxKey{}).(*request)
		_ = pages.ExecuteTemplate(w, "error.html", map[string]any{"Code": code, "Message": msg,
			"SignedIn": rq != nil && rq.id != nil}) // signed in: the account page and sign-out too
		return
	}
	writeJSON(w, code, map[string]any{"error": msg, "code": errCode})
}

// dbUnavailable answers a request whose database work failed.
func dbUnavailable(w http.ResponseWriter, r *http.Request) {
	writeError(w, r, http.StatusServiceUnavailable, "DB_UNAVAILABLE", "The users database is not reachable.")
}

// storeFailed answers a failed store call — 404 with notFound for store.ErrNotFound, else
// dbUnavailable — and reports whether err was set.
func storeFailed(w http.ResponseWriter, r *http.Request, err error, notFound string) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, store.ErrNotFound):
		writeError(w, r, http.StatusNotFound, "NOT_FOUND", notFound)
	default:
		dbUnavailable(w, r)
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
