package authserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
)

// snapshot is an immutable view of the tables every request consults. A new one replaces it
// when a change counter moves, so the request path needs no database round trip.
type snapshot struct {
	usersByID   map[string]store.User
	usersByName map[string]store.User
	roles       map[string]store.Role
	rules       *ipaccess.RuleSet
	devices     map[string]time.Time
	tokens      map[[sha256.Size]byte]*cachedToken // by SHA-256; revoked ones left out
	tokenByID   map[string]*cachedToken            // the same tokens by id (open sockets are re-checked by id)
	grants      []store.Grant
	s3Models    map[s3Key]bool
	grantSets   *sync.Map // user id → *modelgrant.Set, computed on first use from this snapshot
}

// grantsOf lists the grants that reach u: by their role, and to them.
func (sn *snapshot) grantsOf(u store.User) []store.Grant {
	var out []store.Grant
	for _, g := range sn.grants {
		if g.UserID == u.ID || (g.Role != "" && g.Role == u.Role) {
			out = append(out, g)
		}
	}
	return out
}

// s3Key names a model an S3Mount holds.
type s3Key struct{ folder, name string }

// grantSet is the models the user is granted: by their role and to them (from their resource
// or through the admin API).
func (sn *snapshot) grantSet(u store.User) *modelgrant.Set {
	if v, ok := sn.grantSets.Load(u.ID); ok {
		return v.(*modelgrant.Set)
	}
	var gs []modelgrant.Grant
	for _, g := range sn.grantsOf(u) {
		gs = append(gs, g.Grant)
	}
	set := modelgrant.NewSet(gs)
	sn.grantSets.Store(u.ID, set)
	return set
}

// role returns the named role. An unknown role grants nothing (fail closed): a permission a
// role does not state is not granted.
func (sn *snapshot) role(name string) store.Role {
	if r, ok := sn.roles[name]; ok {
		return r
	}
	return store.Role{Role: roles.Role{Name: name, Permissions: map[string]bool{}, UI: map[string]bool{}}}
}

// cachedToken is a cached API token row; lastUsed (Unix milliseconds) changes in place, so a
// busy token's use is recorded at most once a second.
type cachedToken struct {
	store.APIToken
	lastUsed atomic.Int64
}

// session is a cached session row. revoked and lastUsed change in place.
type session struct {
	userID    string
	expiresAt time.Time
	revoked   atomic.Bool
	lastUsed  atomic.Int64 // Unix milliseconds
}

// cache holds the snapshot and the sessions, and keeps them fresh from the database.
type cache struct {
	db       *store.Store
	log      *slog.Logger
	snap     atomic.Pointer[snapshot]
	sessions sync.Map // jti → *session

	mu          sync.Mutex
	versions    map[string]int64
	revokeCheck time.Time
	lastForced  atomic.Int64 // Unix nanoseconds of the last refreshSoon

	// touched collects last-use times, written to the database in batches.
	touchMu       sync.Mutex
	touchSessions map[string]time.Time
	touchTokens   map[string]time.Time
	// unsaved are revocations the database refused (an outage): retried until stored, so that
	// the other replicas learn them when it is back.
	unsaved map[string]bool

	// onChange is called after a reload of users, roles, rules or revocations (to re-check
	// open WebSockets).
	onChange func()
	// onUsers is called after a reload of the users (their password hash kinds are measured).
	onUsers func(map[string]store.User)
}

func newCache(ctx context.Context, db *store.Store, log *slog.Logger) (*cache, error) {
	c := &cache{db: db, log: log, versions: map[string]int64{},
		touchSessions: map[string]time.Time{}, touchTokens: map[string]time.Time{}, unsaved: map[string]bool{}}
	c.snap.Store(&snapshot{grantSets: &sync.Map{}})
	if err := c.refresh(ctx, true); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cache) get() *snapshot { return c.snap.Load() }

// refresh reloads the topics whose change counter moved (all of them when force: the first
// load), then calls onChange, which re-checks open sockets.
func (c *cache) refresh(ctx context.Context, force bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, err := c.db.Versions(ctx)
	if err != nil {
		return err
	}
	changed := func(topic string) bool { return force || v[topic] != c.versions[topic] }
	old := c.get()
	next := *old
	reloaded, usersReloaded := false, false
	if changed(store.TopicUsers) {
		users, err := c.db.Users(ctx)
		if err != nil {
			return err
		}
		next.usersByID = make(map[string]store.User, len(users))
		next.usersByName = make(map[string]store.User, len(users))
		for _, u := range users {
			next.usersByID[u.ID] = u
			next.usersByName[u.Username] = u
		}
		reloaded, usersReloaded = true, true
	}
	if changed(store.TopicRoles) {
		rs, err := c.db.Roles(ctx)
		if err != nil {
			return err
		}
		next.roles = make(map[string]store.Role, len(rs))
		for _, r := range rs {
			next.roles[r.Name] = r
		}
		reloaded = true
	}
	if changed(store.TopicIPRules) || changed(store.TopicDevices) {
		if next.rules, next.devices, err = c.loadRules(ctx); err != nil {
			return err
		}
		reloaded = true
	}
	if changed(store.TopicSessions) {
		toks, err := c.db.APITokens(ctx, "")
		if err != nil {
			return err
		}
		next.tokens = make(map[[sha256.Size]byte]*cachedToken, len(toks))
		next.tokenByID = make(map[string]*cachedToken, len(toks))
		for _, t := range toks {
			var h [sha256.Size]byte
			if n, err := hex.Decode(h[:], []byte(t.TokenHash)); err != nil || n != len(h) || !t.RevokedAt.IsZero() {
				continue
			}
			ct := &cachedToken{APIToken: t}
			if prev, ok := old.tokenByID[t.ID]; ok {
				ct.lastUsed.Store(prev.lastUsed.Load())
			}
			next.tokens[h], next.tokenByID[t.ID] = ct, ct
		}
		// Revocations since the last look (with a margin for clock skew between replicas). At
		// the first load no session is cached yet: sessions are read with their revocation.
		since := c.revokeCheck.Add(-10 * time.Second)
		c.revokeCheck = time.Now()
		if !force {
			jtis, err := c.db.RevokedSessionsSince(ctx, since)
			if err != nil {
				return err
			}
			for _, j := range jtis {
				c.markRevoked(j)
			}
		}
		reloaded = true
	}
	if changed(store.TopicGrants) {
		if next.grants, err = c.db.Grants(ctx); err != nil {
			return err
		}
		listed, err := c.db.ListedModels(ctx, "")
		if err != nil {
			return err
		}
		next.s3Models = map[s3Key]bool{}
		for _, m := range listed {
			if m.Source != store.SourceComfyUI {
				next.s3Models[s3Key{modelgrant.Canonical(m.Folder), m.Name}] = true
			}
		}
	}
	next.grantSets = &sync.Map{} // users, roles or grants may have changed
	c.snap.Store(&next)
	c.versions = v
	if usersReloaded && !force && c.onUsers != nil {
		c.onUsers(next.usersByID)
	}
	if reloaded && !force && c.onChange != nil {
		c.onChange()
	}
	return nil
}

func (c *cache) loadRules(ctx context.Context) (*ipaccess.RuleSet, map[string]time.Time, error) {
	rows, err := c.db.IPRules(ctx)
	if err != nil {
		return nil, nil, err
	}
	rules := make([]ipaccess.Rule, 0, len(rows))
	for _, r := range rows {
		rules = append(rules, ipaccess.Rule{
			Prefix:    r.CIDR,
			Allow:     r.Action == store.Allow,
			Ban:       r.Action == store.Deny && r.Source != store.SourceResource && r.CIDR.IsSingleIP(),
			ExpiresAt: r.ExpiresAt,
		})
	}
	devs, err := c.db.LockedDevices(ctx, time.Now())
	if err != nil {
		return nil, nil, err
	}
	devices := make(map[string]time.Time, len(devs))
	for _, d := range devs {
		devices[d.DeviceID] = d.ExpiresAt
	}
	return ipaccess.NewRuleSet(rules), devices, nil
}

// reloadRules makes a ban or lock this process just wrote effective here at once, before the
// next refresh.
func (c *cache) reloadRules(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rules, devices, err := c.loadRules(ctx)
	if err != nil {
		c.log.Warn("reloading IP rules after a ban failed", "error", err)
		return
	}
	next := *c.get()
	next.rules, next.devices = rules, devices
	c.snap.Store(&next)
}

// session returns the session jti, from memory or, the first time this process sees it, from
// the database. An unknown session is invalid (the original treated it as valid).
func (c *cache) session(ctx context.Context, jti string) (*session, error) {
	if s, ok := c.sessions.Load(jti); ok {
		return s.(*session), nil
	}
	row, err := c.db.Session(ctx, jti)
	if err != nil {
		return nil, err
	}
	s := &session{userID: row.UserID, expiresAt: row.ExpiresAt}
	s.revoked.Store(!row.RevokedAt.IsZero())
	s.lastUsed.Store(row.LastUsedAt.UnixMilli())
	actual, _ := c.sessions.LoadOrStore(jti, s)
	return actual.(*session), nil
}

// markRevoked marks the cached session jti (if any) revoked.
func (c *cache) markRevoked(jti string) {
	if s, ok := c.sessions.Load(jti); ok {
		s.(*session).revoked.Store(true)
	}
}

// refreshLastUsed re-reads a session's last use from the database (another replica may have
// seen it more recently) before it is declared idle.
func (c *cache) refreshLastUsed(ctx context.Context, jti string, s *session) {
	row, err := c.db.Session(ctx, jti)
	if err == nil && row.LastUsedAt.UnixMilli() > s.lastUsed.Load() {
		s.lastUsed.Store(row.LastUsedAt.UnixMilli())
	}
	if err == nil && !row.RevokedAt.IsZero() {
		s.revoked.Store(true)
	}
}

func (c *cache) touchSession(jti string, at time.Time) {
	c.touchMu.Lock()
	c.touchSessions[jti] = at
	c.touchMu.Unlock()
}

func (c *cache) touchToken(id string, at time.Time) {
	c.touchMu.Lock()
	c.touchTokens[id] = at
	c.touchMu.Unlock()
}

// refreshSoon refreshes now unless a request did so less than 100 ms ago.
func (c *cache) refreshSoon(ctx context.Context) {
	now := time.Now().UnixNano()
	last := c.lastForced.Load()
	if now-last < int64(100*time.Millisecond) || !c.lastForced.CompareAndSwap(last, now) {
		return
	}
	if err := c.refresh(ctx, false); err != nil {
		c.log.Warn("refreshing the cache for a session of an unknown user failed", "error", err)
	}
}

// flushTouches writes the collected last-use times.
func (c *cache) flushTouches(ctx context.Context) error {
	c.touchMu.Lock()
	sess, toks := c.touchSessions, c.touchTokens
	c.touchSessions, c.touchTokens = map[string]time.Time{}, map[string]time.Time{}
	c.touchMu.Unlock()
	return errors.Join(c.db.TouchSessions(ctx, sess), c.db.TouchAPITokens(ctx, toks))
}

// revoke revokes the session jti here at once and in the database. When the database refuses,
// the revocation is kept and retried (retryRevocations) until stored; the error says the other
// replicas do not know it yet.
func (c *cache) revoke(ctx context.Context, jti, userID string) error {
	err := c.db.RevokeSession(ctx, jti, userID)
	if errors.Is(err, store.ErrNotFound) {
		return err
	}
	c.markRevoked(jti)
	if err != nil {
		c.touchMu.Lock()
		c.unsaved[jti] = true
		c.touchMu.Unlock()
	}
	return err
}

// retryRevocations stores the revocations the database refused before.
func (c *cache) retryRevocations(ctx context.Context) {
	c.touchMu.Lock()
	pending := make([]string, 0, len(c.unsaved))
	for jti := range c.unsaved {
		pending = append(pending, jti)
	}
	c.touchMu.Unlock()
	for _, jti := range pending {
		err := c.db.RevokeSession(ctx, jti, "")
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return // still down: next time
		}
		c.touchMu.Lock()
		delete(c.unsaved, jti)
		c.touchMu.Unlock()
		c.log.Info("a session revocation refused during a database outage is now stored")
	}
}

// run keeps the cache fresh until ctx ends: the change counters every interval, last-use
// times every flushEvery.
func (c *cache) run(ctx context.Context, interval, flushEvery time.Duration) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	lastFlush := time.Now()
	for {
		select {
		case <-ctx.Done():
			_ = c.flushTouches(context.Background())
			return
		case <-tick.C:
			if err := c.refresh(ctx, false); err != nil && ctx.Err() == nil {
				c.log.Warn("refreshing the cache from the users database failed", "error", err)
			}
			c.retryRevocations(ctx)
			if time.Since(lastFlush) >= flushEvery {
				lastFlush = time.Now()
				if err := c.flushTouches(ctx); err != nil && ctx.Err() == nil {
					c.log.Warn("writing last-use times failed", "error", err)
				}
			}
		}
	}
}
