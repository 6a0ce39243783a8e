package authserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

// attemptStore is what attempt counting asks of the users database: the failure counters of
// addresses and usernames, the ban and device lock they lead to, and the ban's audit line.
type attemptStore interface {
	AdmitAttempt(ctx context.Context, scope, subject string, at time.Time, window time.Duration,
		refuse func(failures int, last time.Time) bool) (n int, admitted bool, err error)
	ForgetAttempt(ctx context.Context, scope, subject string) error
	ResetFailures(ctx context.Context, scope, subject string) error
	RecordFailure(ctx context.Context, scope, subject string, at time.Time, window time.Duration) (int, error)
	FailureState(ctx context.Context, scope, subject string, at time.Time, window time.Duration) (int, time.Time, error)
	BanIP(ctx context.Context, addr netip.Addr, at, until time.Time, reason string) (created bool, err error)
	LockDevice(ctx context.Context, deviceID string, at, until time.Time, reason string) (created bool, err error)
	Audit(ctx context.Context, e store.AuditEvent) error
}

var _ attemptStore = (*store.Store)(nil)

// attempts is the users database as attempt counting sees it.
func (s *Server) attempts() attemptStore { return s.db }

// attempt is one credential check from an address, counted before any password hash is
// computed, so that a storm of parallel guesses cannot buy more hashes than the cooldowns allow.
type attempt struct {
	s       *Server
	db      attemptStore
	ip      netip.Addr
	device  string
	counted bool
	n       int // this attempt's number within the window
}

// refusal says why an attempt was refused without checking the credential.
type refusal struct {
	failures  int
	remaining time.Duration
}

// seconds is the wait in whole seconds, rounded up: waiting that long is always enough.
func (r *refusal) seconds() int { return int((r.remaining + time.Second - 1) / time.Second) }

func (r *refusal) message() string {
	return fmt.Sprintf("Too many failed attempts. Please wait %d seconds.", r.seconds())
}

// body is the JSON answer to a refused attempt.
func (r *refusal) body() map[string]any {
	return map[string]any{"error": r.message(), "failed_attempts": r.failures, "remaining_seconds": r.seconds()}
}

// beginAttempt admits or refuses a credential check from ip. An admitted attempt is counted as
// a failure before any password hash is computed (so parallel guesses see each other) and
// forgotten if it succeeds; a refused one — the address is cooling down — checks nothing and
// counts nothing, and the wait it reports is the real time left. Addresses on the allow list
// or in security.json's unlock_ips, and every address while disable_lockout_until is in the
// future, are not counted (as the original).
func (s *Server) beginAttempt(ctx context.Context, ip netip.Addr, device string, now time.Time) (*attempt, *refusal, error) {
	a := &attempt{s: s, db: s.attempts(), ip: ip, device: device}
	if s.exempt(ip, now) {
		return a, nil, nil
	}
	window := time.Duration(s.cfg.FailureWindowMinutes) * time.Minute
	var wait time.Duration
	n, admitted, err := a.db.AdmitAttempt(ctx, store.ScopeIP, ip.String(), now, window, func(failures int, last time.Time) bool {
		wait = ipaccess.CooldownRemaining(failures, last, now)
		return wait > 0
	})
	switch {
	case errors.Is(err, store.ErrContended):
		return nil, &refusal{failures: n, remaining: time.Second}, nil
	case err != nil:
		return nil, nil, err
	case !admitted:
		return nil, &refusal{failures: n, remaining: wait}, nil
	}
	a.counted, a.n = true, n
	return a, nil, nil
}

// finish records the outcome: success forgets the address's failures; the failure that
// reaches blacklist_after_attempts bans the address (and locks the device) for
// blacklist_expiry_hours.
func (a *attempt) finish(ctx context.Context, success bool, now time.Time) {
	if !a.counted {
		return
	}
	ctx = context.WithoutCancel(ctx) // a client that hangs up does not cancel its ban
	if success {
		_ = a.db.ResetFailures(ctx, store.ScopeIP, a.ip.String())
		return
	}
	if limit := a.s.cfg.BlacklistAfterAttempts; limit > 0 && a.n >= limit {
		a.s.ban(ctx, a.ip, a.device, now, a.n)
	}
}

// uncount takes this attempt back out of the address's count.
func (a *attempt) uncount(ctx context.Context) {
	if a.counted {
		_ = a.db.ForgetAttempt(context.WithoutCancel(ctx), store.ScopeIP, a.ip.String())
	}
}

func (s *Server) exempt(ip netip.Addr, now time.Time) bool {
	sec := s.security.get()
	if !sec.DisableLockoutUntil.IsZero() && sec.DisableLockoutUntil.After(now) {
		return true
	}
	for _, p := range sec.UnlockIPs {
		if p.Contains(ip) {
			return true
		}
	}
	allowListed := false
	s.cache.get().rules.Match(ip, now, func(r ipaccess.Rule) bool {
		allowListed = allowListed || r.Allow
		return !allowListed
	})
	return allowListed
}

// shortDevice names a device in the audit trail by a prefix of its id: enough to tell devices
// apart, not enough to present as the device.
func shortDevice(id string) string {
	if len(id) > 8 {
		return id[:8] + "…"
	}
	return id
}

func (s *Server) ban(ctx context.Context, ip netip.Addr, device string, now time.Time, failures int) {
	until := now.Add(time.Duration(s.cfg.BlacklistExpiryHours) * time.Hour)
	reason := fmt.Sprintf("%d failed attempts", failures)
	db := s.attempts()
	created, err := db.BanIP(ctx, ip, now, until, reason)
	if err != nil {
		s.log.Error("creating a ban failed", "ip", ip, "error", err)
		return
	}
	if device != "" {
		if locked, err := db.LockDevice(ctx, device, now, until, "banned with "+ip.String()); err != nil {
			s.log.Warn("locking the device failed", "error", err)
		} else if locked {
			_ = db.Audit(ctx, store.AuditEvent{Actor: "system", Action: "device.locked", Target: shortDevice(device),
				ClientIP: ip.String(), Detail: "banned with " + ip.String()})
		}
	}
	if created {
		s.metrics.bans.Inc()
		s.log.Warn("address banned after failed attempts", "ip", ip, "failures", failures, "until", until)
		_ = db.Audit(ctx, store.AuditEvent{Actor: "system", Action: "ban.created", Target: ip.String(),
			ClientIP: ip.String(), Detail: reason})
	}
	s.cache.reloadRules(ctx)
}

// countUserFailure counts a failed password for a username (spraying across addresses); it
// never locks the account, it only slows further guesses at it.
func (s *Server) countUserFailure(ctx context.Context, username string, now time.Time) {
	window := time.Duration(s.cfg.FailureWindowMinutes) * time.Minute
	_, _ = s.attempts().RecordFailure(ctx, store.ScopeUser, username, now, window)
}

// userThrottle is the delay before checking a password for a username that many addresses
// have been guessing at.
func (s *Server) userThrottle(ctx context.Context, username string, now time.Time) time.Duration {
	window := time.Duration(s.cfg.FailureWindowMinutes) * time.Minute
	n, _, err := s.attempts().FailureState(ctx, store.ScopeUser, username, now, window)
	if err != nil || n < 20 {
		return 0
	}
	return time.Second
}

// confirmPassword checks the caller's own password as a counted attempt: a cooling-down
// client is refused without a hash. No password at all checks and counts nothing (a script with
// a valid token that is asked for one must not put its own address into cooldown). err is set
// only when the database failed.
func (s *Server) confirmPassword(r *http.Request, u store.User, pw string) (ok bool, ref *refusal, err error) {
	if pw == "" {
		return false, nil, nil
	}
	ctx, rq, now, start := r.Context(), reqInfo(r), s.now(), time.Now()
	att, ref, err := s.beginAttempt(ctx, rq.ip, rq.device, now)
	if err != nil || ref != nil {
		return false, ref, err
	}
	res := s.checkPassword(u, pw, start)
	if res.OK {
		// Confirming one's own password forgets only this attempt: a signed-in account must not
		// be a way to wipe the address's failures (only a completed login does that).
		att.uncount(ctx)
	} else {
		att.finish(ctx, false, now)
	}
	return res.OK, nil, nil
}

// changePassword sets the caller's new password after the current one, ends the account's other
// sessions and records it. It returns a user-facing problem, or "" on success.
func (s *Server) changePassword(r *http.Request, id *identity, current, next string) (code int, problem string) {
	if id.user.OwnerRef != "" {
		return http.StatusConflict, "This account is managed by " + managedBy(id.user.OwnerRef) + ": change the password in its Secret."
	}
	ok, ref, err := s.confirmPassword(r, id.user, current)
	switch {
	case err != nil:
		return http.StatusServiceUnavailable, "The users database is not reachable."
	case ref != nil:
		return http.StatusForbidden, ref.message()
	case !ok:
		return http.StatusUnauthorized, "current_password: incorrect"
	}
	if err := validatePassword(next); err != nil {
		return http.StatusBadRequest, "new_" + err.Error()
	}
	h, err := password.Hash(next)
	if err == nil {
		err = s.db.SetPasswordHash(r.Context(), id.user.ID, h)
	}
	if err != nil {
		return http.StatusInternalServerError, "Could not change the password."
	}
	s.endOtherSessions(r, id)
	_ = s.db.Audit(r.Context(), store.AuditEvent{Actor: id.user.Username, Action: "password.changed", ClientIP: reqInfo(r).ip.String()})
	return 0, ""
}
