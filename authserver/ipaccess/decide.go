package ipaccess

import (
	"net/netip"
	"time"
)

// Security is security.json's lockout section: the owner's break-glass on the data directory.
type Security struct {
	UnlockIPs           []netip.Prefix
	UnlockDevices       map[string]bool
	DisableLockoutUntil time.Time // zero = not set
}

// Input is everything the IP decision needs about one request.
type Input struct {
	IP       netip.Addr
	DeviceID string
	Now      time.Time
	Rules    *RuleSet
	Devices  map[string]time.Time // locked device → expiry (zero = until unlocked)
	Security Security
}

// Verdict is the outcome: Allowed, or why not.
type Verdict int

const (
	Allowed Verdict = iota
	DeniedInvalidIP
	DeniedBanned
	DeniedDevice
	DeniedRule
	DeniedNotAllowListed
)

func (v Verdict) String() string {
	return [...]string{"allowed", "invalid client address", "banned", "device locked", "denied by an IP rule", "not on the allow list"}[v]
}

// Decide applies, in order: the security.json unlocks, bans and device locks (both lifted while
// disable_lockout_until is in the future — the original forgot the bans), deny rules, then
// allow-list mode. An unparseable address is refused.
func Decide(in Input) Verdict {
	if !in.IP.IsValid() {
		return DeniedInvalidIP
	}
	ip := in.IP.Unmap()
	for _, p := range in.Security.UnlockIPs {
		if p.Contains(ip) {
			return Allowed
		}
	}
	if in.DeviceID != "" && in.Security.UnlockDevices[in.DeviceID] {
		return Allowed
	}
	lockoutOff := !in.Security.DisableLockoutUntil.IsZero() && in.Security.DisableLockoutUntil.After(in.Now)
	if !lockoutOff && in.DeviceID != "" {
		if exp, locked := in.Devices[in.DeviceID]; locked && (exp.IsZero() || exp.After(in.Now)) {
			return DeniedDevice
		}
	}
	verdict, allowed := Allowed, false
	in.Rules.Match(ip, in.Now, func(r Rule) bool {
		switch {
		case r.Ban && !lockoutOff:
			verdict = DeniedBanned
			return false
		case !r.Ban && !r.Allow:
			verdict = DeniedRule
			return false
		case r.Allow:
			allowed = true
		}
		return true
	})
	if verdict != Allowed {
		return verdict
	}
	if in.Rules.AllowList() && !allowed {
		return DeniedNotAllowListed
	}
	return Allowed
}

// Cooldown is the original's wait after failed attempts: ≥3 → 60 s, ≥6 → 90 s, ≥9 → 300 s.
func Cooldown(failures int) time.Duration {
	switch {
	case failures >= 9:
		return 300 * time.Second
	case failures >= 6:
		return 90 * time.Second
	case failures >= 3:
		return 60 * time.Second
	}
	return 0
}

// CooldownRemaining is how long a client with failures, the last at last, still waits at now:
// never less than 0, never more than the cooldown itself (an attempt that started a moment
// before the last failure was counted sees that failure as in its future).
func CooldownRemaining(failures int, last, now time.Time) time.Duration {
	c := Cooldown(failures)
	return min(max(last.Add(c).Sub(now), 0), c)
}
