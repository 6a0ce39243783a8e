package authserver

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
)

// failureTiming makes every failed password check last as long as the slowest failure any hash
// kind in the store costs. An unknown username is checked against an argon2id hash (~60 ms),
// while a wrong password for an imported bcrypt account costs one or two bcrypt runs (~0.3–1 s):
// without the floor the time tells which names exist. Waiting is a sleep, not a hash, so it
// costs no CPU.
type failureTiming struct {
	log   *slog.Logger
	mu    sync.Mutex      // one measurement at a time
	kinds map[string]bool // hash kinds measured
	floor atomic.Int64    // nanoseconds
}

func newFailureTiming(log *slog.Logger) *failureTiming {
	return &failureTiming{log: log, kinds: map[string]bool{}}
}

// learn measures the hash kinds among users not measured yet and raises the floor.
func (ft *failureTiming) learn(users map[string]store.User, extra ...string) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	measure := func(hash string) {
		kind := password.Kind(hash)
		if kind == "" || ft.kinds[kind] {
			return
		}
		ft.kinds[kind] = true
		d, err := password.FailureCost(hash)
		if err != nil {
			ft.log.Warn("measuring the cost of a password hash kind failed", "kind", kind, "error", err)
			return
		}
		if int64(d) > ft.floor.Load() {
			ft.floor.Store(int64(d))
			ft.log.Info("failed password checks now take at least the slowest stored hash kind", "kind", kind, "floor", d.Round(time.Millisecond))
		}
	}
	for _, h := range extra {
		measure(h)
	}
	for _, u := range users {
		measure(u.PasswordHash)
	}
}

// pad sleeps until the failure that began at start has lasted the floor.
func (ft *failureTiming) pad(start time.Time) {
	if d := time.Duration(ft.floor.Load()) - time.Since(start); d > 0 {
		time.Sleep(d)
	}
}

// checkPassword verifies pw for u (the zero User when there is no such user). start is when the
// check began, before the user was looked up: a failure lasts at least the floor from then.
func (s *Server) checkPassword(u store.User, pw string, start time.Time) password.Result {
	s.metrics.hashes.Inc()
	var res password.Result
	if u.PasswordHash != "" {
		res, _ = password.Verify(u.PasswordHash, pw)
	} else {
		password.VerifyDummy(pw)
	}
	if !res.OK {
		s.timing.pad(start)
	}
	return res
}
