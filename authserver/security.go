package authserver

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/internal/netaddr"
)

// securityFile is DATA_DIR/security.json, the owner's break-glass: re-read when it changes
// (checked at most once a second), never per request.
type securityFile struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex   // held by the one request that re-checks the file
	checked atomic.Int64 // Unix nanoseconds of the last check
	modTime time.Time
	size    int64
	current atomic.Pointer[ipaccess.Security]
}

type securityJSON struct {
	Lockout struct {
		UnlockIPs           []string `json:"unlock_ips"`
		UnlockDevices       []string `json:"unlock_devices"`
		DisableLockoutUntil *float64 `json:"disable_lockout_until"`
	} `json:"lockout"`
}

// get returns the current unlocks. Requests read them without a lock; at most once a second one
// of them re-checks the file (the others keep the previous state meanwhile).
func (f *securityFile) get() ipaccess.Security {
	cur := f.current.Load()
	if cur == nil {
		cur = &ipaccess.Security{}
	}
	now := time.Now()
	if now.UnixNano()-f.checked.Load() < int64(time.Second) || !f.mu.TryLock() {
		return *cur
	}
	defer f.mu.Unlock()
	f.checked.Store(now.UnixNano())
	next, changed := f.load()
	if changed {
		f.current.Store(&next)
		return next
	}
	return *cur
}

// load re-reads the file when it changed (or disappeared); changed is false when the state stays.
func (f *securityFile) load() (_ ipaccess.Security, changed bool) {
	st, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		if f.modTime.IsZero() && f.size == 0 {
			return ipaccess.Security{}, false
		}
		f.modTime, f.size = time.Time{}, 0
		return ipaccess.Security{}, true
	}
	if err != nil || (st.ModTime().Equal(f.modTime) && st.Size() == f.size) {
		return ipaccess.Security{}, false
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.log.Warn("security.json cannot be read; keeping the previous unlocks", "error", err)
		return ipaccess.Security{}, false
	}
	var doc securityJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		f.log.Warn("security.json is not valid JSON; keeping the previous unlocks", "error", err)
		return ipaccess.Security{}, false
	}
	next := ipaccess.Security{UnlockDevices: map[string]bool{}}
	for _, s := range doc.Lockout.UnlockIPs {
		p, err := netaddr.ParsePrefix(s)
		if err != nil {
			f.log.Warn("security.json: ignoring a bad unlock_ips entry", "entry", s)
			continue
		}
		next.UnlockIPs = append(next.UnlockIPs, p)
	}
	for _, d := range doc.Lockout.UnlockDevices {
		next.UnlockDevices[d] = true
	}
	if t := doc.Lockout.DisableLockoutUntil; t != nil && *t > 0 {
		next.DisableLockoutUntil = time.Unix(int64(*t), 0)
	}
	f.log.Info("security.json loaded", "unlock_ips", len(next.UnlockIPs), "unlock_devices", len(next.UnlockDevices),
		"disable_lockout_until", next.DisableLockoutUntil)
	return next, true
}
