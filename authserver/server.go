package authserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/authserver/policy"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/crypt"
	"github.com/mss-login/mss-login/internal/listen"
	"github.com/mss-login/mss-login/internal/notify"
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
	// Notify overrides the notifier's timings (tests); the configuration's keys apply on top.
	Notify notify.Options
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
	// notifyOptions are the notifier's (notify.OptionsFrom and Options.Notify).
	notifyOptions notify.Options
	// sso is single sign-on, nil when oidc.issuer is not set.
	sso         *sso
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
	if s.sso, err = newSSO(cfg); err != nil {
		return nil, err
	}
	s.notifyOptions = notify.OptionsFrom(cfg)
	s.notifyOptions.Poll, s.notifyOptions.Settle, s.notifyOptions.MinBackoff = o.Notify.Poll, o.Notify.Settle, o.Notify.MinBackoff
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
	s.applySSOMapping(ctx)
	if s.cfg.DownloadsEnabled() {
		go s.downloadWorker().Run(ctx)
	}
	if sinks := notify.Sinks(s.cfg); len(sinks) > 0 {
		go notify.New(s.db, sinks, s.log.With("component", "notify"), s.metrics.registry, s.notifyOptions).Run(ctx)
	}
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
