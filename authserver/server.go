// Package authserver is mss-login's auth server: a reverse proxy in front of ComfyUI (HTTP and
// WebSocket) that authenticates every request with one authenticator, decides it with one
// policy (authserver/policy), enforces IP rules and lockout (authserver/ipaccess), and serves
// login, registration, tokens and the mss-login API.
package authserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/crypt"
	"github.com/mss-login/mss-login/internal/roles"
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
	mux         *http.ServeMux
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
	if s.cache, err = newCache(ctx, o.Store, log); err != nil {
		return nil, err
	}
	s.cache.onChange = s.sweepSockets
	s.loadHostBase(ctx)
	s.proxy = s.newProxy()
	s.mux = s.routes()
	return s, nil
}

// Run serves the proxy on listen_address and /metrics on metrics_address until ctx ends.
func (s *Server) Run(ctx context.Context) error {
	main := &http.Server{Addr: s.cfg.ListenAddress, Handler: s, ReadHeaderTimeout: 10 * time.Second,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	metricsSrv := &http.Server{Addr: s.cfg.MetricsAddress, Handler: s.MetricsHandler(), ReadHeaderTimeout: 10 * time.Second}
	go s.Background(ctx)
	errc := make(chan error, 2)
	go func() { errc <- main.ListenAndServe() }()
	go func() { errc <- metricsSrv.ListenAndServe() }()
	s.log.Info("auth server listening", "address", s.cfg.ListenAddress, "metrics", s.cfg.MetricsAddress,
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

// Background keeps the cache fresh and re-checks open WebSockets until ctx ends.
func (s *Server) Background(ctx context.Context) {
	go s.cache.run(ctx, s.refresh, 10*time.Second)
	tick := time.NewTicker(s.refresh)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			// Sessions expire and idle out without any write: check sockets on a timer too.
			s.sweepSockets()
		}
	}
}

// sweepSockets closes the sockets whose identity is no longer valid or allowed.
func (s *Server) sweepSockets() {
	now := s.now()
	s.sockets.sweep(func(so *socket) bool {
		cur := s.revalidate(so.id, now)
		if cur == nil || !cur.can(roles.CanAccessAPI) {
			return false
		}
		return ipaccess.Decide(s.ipInput(so.ip, "", now)) == ipaccess.Allowed
	})
}

// revalidate re-runs the cached checks of an identity without a token string.
func (s *Server) revalidate(id *identity, now time.Time) *identity {
	snap := s.cache.get()
	u, ok := snap.usersByID[id.user.ID]
	if !ok || u.Disabled {
		return nil
	}
	if id.tokenID != "" {
		t, ok := snap.tokenByID[id.tokenID]
		if !ok || (!t.ExpiresAt.IsZero() && !t.ExpiresAt.After(now)) {
			return nil
		}
	} else {
		v, ok := s.cache.sessions.Load(id.jti)
		if !ok {
			return nil
		}
		sess := v.(*session)
		if sess.revoked.Load() || (!sess.expiresAt.IsZero() && !sess.expiresAt.After(now)) {
			return nil
		}
	}
	next := *id
	next.user, next.role = u, snap.role(u.Role)
	return &next
}

func (s *Server) ipInput(ip netip.Addr, device string, now time.Time) ipaccess.Input {
	snap := s.cache.get()
	return ipaccess.Input{IP: ip, DeviceID: device, Now: now, Rules: snap.rules, Devices: snap.devices,
		Security: s.security.get()}
}

// request is what the middleware established about a request.
type request struct {
	ip        netip.Addr
	https     bool
	path      policy.Path
	rule      policy.Rule
	id        *identity
	device    string
	comfyUser string // the comfy-user header sent upstream (ComfyUI's --multi-user id)
}

type ctxKey struct{}

func reqInfo(r *http.Request) *request { return r.Context().Value(ctxKey{}).(*request) }

// ServeHTTP is the single entry point: every request, the auth server's own included, passes
// the same checks in the same order before anything else happens.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := s.now()
	peer := ipaccess.PeerAddr(r.RemoteAddr)
	rq := &request{ip: s.resolver.ClientIP(peer, r.Header), https: s.resolver.HTTPS(r, peer), device: deviceID(r)}
	setSecurityHeaders(w, rq.https && s.cfg.ForceHTTPS)
	rec := &statusRecorder{ResponseWriter: w, code: 200}
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
	if v := ipaccess.Decide(s.ipInput(rq.ip, rq.device, now)); v != ipaccess.Allowed {
		class = "rejected"
		s.metrics.auth.WithLabelValues("ip_" + strings.ReplaceAll(v.String(), " ", "_")).Inc()
		writeError(rec, r, http.StatusForbidden, "IP_DENIED", "Access denied: IP is either not whitelisted or is blacklisted.")
		return
	}
	rq.rule = policy.Decide(r.Method, p)
	if rq.rule.Local {
		class = "local"
	}
	token, viaCookie := credential(r)
	if rq.id = s.authenticate(r.Context(), token, now); rq.id != nil {
		rq.id.viaCookie = viaCookie
		s.detectHostBase(r, rq.id)
	}
	if rq.rule.Access != policy.Public {
		if rq.id == nil {
			s.metrics.auth.WithLabelValues("unauthenticated").Inc()
			s.unauthenticated(rec, r, p)
			return
		}
		if !s.allowed(rq.id, rq.rule) {
			s.metrics.auth.WithLabelValues("forbidden").Inc()
			writeError(rec, r, http.StatusForbidden, rq.rule.Code, rq.rule.Message)
			return
		}
	}
	// A cookie rides along on cross-site requests: state changes need a same-origin request.
	if rq.id != nil && rq.id.viaCookie && !safeMethod(r.Method) && !sameOrigin(r, s.hostBase()) {
		s.metrics.auth.WithLabelValues("cross_site").Inc()
		writeError(rec, r, http.StatusForbidden, "CROSS_SITE", "Cross-site request refused.")
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rq))
	if rq.rule.Local {
		s.mux.ServeHTTP(rec, r)
		return
	}
	s.forward(rec, r, rq)
}

func (s *Server) allowed(id *identity, rule policy.Rule) bool {
	switch rule.Access {
	case policy.Public, policy.Authenticated:
		return true
	case policy.Permission:
		return id.can(rule.Permission)
	case policy.Admin:
		return id.isAdmin()
	}
	return false
}

// unauthenticated answers JSON 401 to API, WebSocket and non-HTML clients, and sends browser
// navigation to the login page with a same-origin next= path.
func (s *Server) unauthenticated(w http.ResponseWriter, r *http.Request, p policy.Path) {
	if isNavigation(r) && !strings.HasPrefix(p.Match, "/api/") && p.Match != "/ws" {
		next := p.Forward
		if r.URL.RawQuery != "" {
			next += "?" + stripTokenParams(r.URL.Query()).Encode()
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

// sameOrigin: browsers send Origin on unsafe requests (and Sec-Fetch-Site); a request without
// either is not from a browser page.
func sameOrigin(r *http.Request, base string) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		return false
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true // not a browser page (browsers send Origin on unsafe requests)
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	if b, err := url.Parse(base); err == nil && base != "" && strings.EqualFold(b.Host, u.Host) {
		return true
	}
	return false
}

func deviceID(r *http.Request) string {
	if d := r.Header.Get("X-Device-ID"); d != "" {
		return truncateString(d, 191)
	}
	if c, err := r.Cookie("mss_login_device_id"); err == nil {
		return truncateString(c.Value, 191)
	}
	return ""
}

func truncateString(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func setSecurityHeaders(w http.ResponseWriter, hsts bool) {
	h := w.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	if hsts {
		h.Set("Strict-Transport-Security", "max-age=31536000")
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
		_ = pages.ExecuteTemplate(w, "error.html", map[string]any{"Code": code, "Message": msg})
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
