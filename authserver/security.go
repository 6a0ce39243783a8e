package authserver

import (
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/mss-login/mss-login/authserver/ipaccess"
	"github.com/mss-login/mss-login/internal/store"
)

// securityFile is DATA_DIR/security.json, the owner's break-glass: re-read when it changes
// (checked at most once a second), never per request.
type securityFile struct {
	path string
	log  *slog.Logger

	mu      sync.Mutex
	checked time.Time
	modTime time.Time
	size    int64
	current ipaccess.Security
}

type securityJSON struct {
	Lockout struct {
		UnlockIPs           []string `json:"unlock_ips"`
		UnlockDevices       []string `json:"unlock_devices"`
		DisableLockoutUntil *float64 `json:"disable_lockout_until"`
	} `json:"lockout"`
}

func (f *securityFile) get() ipaccess.Security {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < time.Second {
		return f.current
	}
	f.checked = time.Now()
	st, err := os.Stat(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.current, f.modTime, f.size = ipaccess.Security{}, time.Time{}, 0
		return f.current
	}
	if err != nil || (st.ModTime().Equal(f.modTime) && st.Size() == f.size) {
		return f.current
	}
	f.modTime, f.size = st.ModTime(), st.Size()
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.log.Warn("security.json cannot be read; keeping the previous unlocks", "error", err)
		return f.current
	}
	var doc securityJSON
	if err := json.Unmarshal(data, &doc); err != nil {
		f.log.Warn("security.json is not valid JSON; keeping the previous unlocks", "error", err)
		return f.current
	}
	next := ipaccess.Security{UnlockDevices: map[string]bool{}}
	for _, s := range doc.Lockout.UnlockIPs {
		p, err := store.ParsePrefix(s)
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
	f.current = next
	f.log.Info("security.json loaded", "unlock_ips", len(next.UnlockIPs), "unlock_devices", len(next.UnlockDevices),
		"disable_lockout_until", next.DisableLockoutUntil)
	return next
}
