package authserver_test

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// One table drives the three callers of the access decision — the proxy (a new upgrade), the
// forward-auth endpoint (the same upgrade described by a gateway) and the socket sweep (an
// upgrade let through before the change) — and they must agree, idle timeout and device locks
// included.
func TestOneDecisionForProxyForwardAuthAndSockets(t *testing.T) {
	type subject struct {
		e      *env
		db     *store.Store
		clk    *clock
		cred   string // the session JWT or API token
		userID string
		ip     string
		device string
	}
	cases := []struct {
		name    string
		token   bool // authenticate with an API token instead of a session
		change  func(t *testing.T, s subject)
		allowed bool
		status  int // the refusal's status, the same from the proxy and forward auth
	}{
		{"unchanged", false, func(*testing.T, subject) {}, true, 0},
		{"unchanged token", true, func(*testing.T, subject) {}, true, 0},
		{"session revoked elsewhere", false, func(t *testing.T, s subject) {
			must(t, s.db.RevokeSession(context.Background(), jtiOf(t, s.cred), ""))
		}, false, 401},
		{"session idle past the limit", false, func(t *testing.T, s subject) { s.clk.advance(31 * time.Minute) }, false, 401},
		{"token expired", true, func(t *testing.T, s subject) { s.clk.advance(2 * time.Hour) }, false, 401},
		{"user disabled", false, func(t *testing.T, s subject) {
			u, err := s.db.UserByName(context.Background(), "dana")
			must(t, err)
			u.Disabled = true
			must(t, s.db.UpdateUser(context.Background(), u))
		}, false, 401},
		{"device locked", false, func(t *testing.T, s subject) {
			_, err := s.db.LockDevice(context.Background(), s.device, s.clk.now(), s.clk.now().Add(time.Hour), "test")
			must(t, err)
		}, false, 403},
		{"address banned", true, func(t *testing.T, s subject) {
			_, err := s.db.BanIP(context.Background(), mustAddr(s.ip), s.clk.now(), s.clk.now().Add(time.Hour), "test")
			must(t, err)
		}, false, 403},
		{"role loses can_access_api", false, func(t *testing.T, s subject) {
			must(t, s.db.PutRole(context.Background(), roles.Role{Name: "painter", Permissions: map[string]bool{roles.CanAccessAPI: false}}, ""))
		}, false, 403},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			clk := &clock{}
			db := testenv.Open(t, store.SQLite)
			e := startWith(t, db, func(cfg *config.Config) { cfg.SessionIdleRevokeMinutes = 30 }, authserver.Options{Now: clk.now})
			owner := e.bootstrap()
			must(t, db.PutRole(context.Background(), roles.Role{Name: "painter", Permissions: map[string]bool{roles.CanAccessAPI: true,
				roles.CanHaveAPITokens: true}}, ""))
			eventually(t, "dana is created", func() bool {
				return e.do("POST", "/mss-login/api/users", map[string]string{"username": "dana", "password": "Dana-pass-1!", "role": "painter"},
					bearer(owner)).code == 201
			})
			s := subject{e: e, db: db, clk: clk, ip: fmt.Sprintf("192.0.2.%d", 200+i), device: fmt.Sprintf("device-%d", i)}
			s.cred = e.login("dana", "Dana-pass-1!", s.ip)
			if c.token {
				r := e.do("POST", "/mss-login/api/tokens", map[string]any{"label": "ws", "expire_hours": 1}, bearer(s.cred), from(s.ip))
				if r.code != 201 {
					t.Fatalf("token: %d %s", r.code, r.raw)
				}
				s.cred = r.body["token"].(string)
			}
			hdr := http.Header{"Authorization": {"Bearer " + s.cred}, "X-Forwarded-For": {s.ip}, "X-Device-Id": {s.device}}
			dial := func() (*websocket.Conn, int) {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				conn, res, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?clientId=1", &websocket.DialOptions{HTTPHeader: hdr})
				if err != nil {
					if res == nil {
						t.Fatal(err)
					}
					return nil, res.StatusCode
				}
				return conn, 0
			}
			open, status := dial()
			if open == nil {
				t.Fatalf("the socket before the change: %d", status)
			}
			defer open.CloseNow()
			closed := make(chan struct{})
			go func() {
				defer close(closed)
				for {
					if _, _, err := open.Read(context.Background()); err != nil {
						return
					}
				}
			}()

			c.change(t, s)
			time.Sleep(300 * time.Millisecond) // the other replica's change reaches this one's cache

			// The sweep.
			socketOpen := true
			select {
			case <-closed:
				socketOpen = false
			case <-time.After(1500 * time.Millisecond):
			}
			// The proxy.
			conn, proxyStatus := dial()
			if conn != nil {
				conn.CloseNow()
			}
			// Forward auth, for the same upgrade.
			r := e.do("GET", "/mss-login/authz/forward-auth", nil, "Authorization: Bearer "+s.cred, from(s.ip), "X-Device-ID: "+s.device,
				"X-Forwarded-Method: GET", "X-Forwarded-Uri: /ws?clientId=1", "Upgrade: websocket")
			forwardStatus := r.code
			if forwardStatus == 200 {
				forwardStatus = 0
			}
			if socketOpen != c.allowed || proxyStatus != c.status || forwardStatus != c.status {
				t.Errorf("socket open %t, proxy %d, forward auth %d (%s); want open %t and %d from both",
					socketOpen, proxyStatus, forwardStatus, r.raw, c.allowed, c.status)
			}
		})
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
