package authserver_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// GET /mss-login/api/audit lists what each action wrote, on every database: filtered by user,
// action (a prefix too) and address, a page at a time; bad filters name the field; a user who is
// not an admin gets 403.
func TestAuditAPI(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			e := start(t, testenv.Open(t, b), nil)
			owner := e.bootstrap()
			for _, n := range []string{"aud1", "aud2", "aud3"} {
				if r := e.do("POST", "/mss-login/api/users", map[string]string{"username": n, "password": "Audit-pass-1!", "role": "user"}, bearer(owner), from("192.0.2.90")); r.code != 201 {
					t.Fatal(r.raw)
				}
			}
			plain := e.login("aud1", "Audit-pass-1!", "192.0.2.91")
			e.do("POST", "/login", map[string]string{"username": "aud2", "password": "wrong-pass-1!"}, from("192.0.2.92"))
			if r := e.do("DELETE", "/mss-login/api/users/aud3", nil, bearer(owner)); r.code != 200 {
				t.Fatal(r.raw)
			}
			type page struct {
				Events []store.AuditEvent `json:"events"`
				Next   string             `json:"next_cursor"`
			}
			get := func(q string) page {
				t.Helper()
				r := e.do("GET", "/mss-login/api/audit?"+q, nil, bearer(owner))
				var p page
				if r.code != 200 || json.Unmarshal([]byte(r.raw), &p) != nil {
					t.Fatalf("GET /mss-login/api/audit?%s: %d %s", q, r.code, r.raw)
				}
				return p
			}
			actions := func(p page) string {
				var out []string
				for _, ev := range p.Events {
					out = append(out, ev.Action+":"+ev.Target)
				}
				return strings.Join(out, " ")
			}
			all := get("")
			for _, want := range []string{"user.deleted:aud3", "login.success", "login.failure"} {
				if !strings.Contains(actions(all), want) {
					t.Errorf("the trail lacks %s: %s", want, actions(all))
				}
			}
			if got := actions(get("action=user.deleted")); got != "user.deleted:aud3" {
				t.Errorf("action=user.deleted: %s", got)
			}
			if got := get("action=login.*&address=192.0.2.92"); len(got.Events) != 1 || got.Events[0].Action != "login.failure" {
				t.Errorf("failed logins from 192.0.2.92: %s", actions(got))
			}
			if got := get("user=aud1&action=login.success"); len(got.Events) != 1 {
				t.Errorf("aud1's logins: %s", actions(got))
			}
			// Pages of two, newest first, together the whole trail.
			var joined []string
			cursor := ""
			for range 50 {
				p := get("limit=2&cursor=" + cursor)
				if len(p.Events) > 2 {
					t.Fatalf("a page of %d", len(p.Events))
				}
				joined = append(joined, actions(p))
				if cursor = p.Next; cursor == "" {
					break
				}
			}
			if strings.Join(joined, " ") != actions(all) {
				t.Errorf("the pages %q are not the trail %q", joined, actions(all))
			}
			for q, field := range map[string]string{"since=yesterday": "since", "limit=0": "limit", "limit=5000": "limit", "cursor=x": "cursor"} {
				if r := e.do("GET", "/mss-login/api/audit?"+q, nil, bearer(owner)); r.code != 400 || !strings.HasPrefix(r.body["error"].(string), field+":") {
					t.Errorf("%s: %d %s", q, r.code, r.raw)
				}
			}
			for _, p := range []string{"/mss-login/api/audit", "/api/mss-login/api/audit"} {
				if r := e.do("GET", p, nil, bearer(plain)); r.code != 403 {
					t.Errorf("a plain user reads %s: %d", p, r.code)
				}
			}
		})
	}
}
