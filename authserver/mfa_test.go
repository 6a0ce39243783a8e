package authserver_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

func withMFA(c *config.Config) {
	c.ExperimentalFeatures, c.Experimental.MFA, c.MFADisabled = true, true, false
	c.RecoveryMode = true // recovery_mode_hosts stays the default loopback list
}

func TestMFA(t *testing.T) {
	for _, b := range testenv.Backends {
		t.Run(string(b), func(t *testing.T) {
			e := start(t, testenv.Open(t, b), withMFA)
			e.bootstrap()
			ip := from("192.0.2.60")
			login := func() resp {
				return e.do("POST", "/login", map[string]string{"username": "owner", "password": ownerPassword}, ip)
			}

			// The owner must enrol: the password step yields an enrolment challenge, no session.
			r := login()
			if r.body["mfa_setup_required"] != true || r.body["jwt_token"] != nil {
				t.Fatalf("enrolment not required: %s", r.raw)
			}
			enrol := r.body["mfa_temp_token"].(string)
			r = e.do("POST", "/mss-login/api/mfa/setup", map[string]string{"mfa_temp_token": enrol}, ip)
			secret, _ := r.body["secret"].(string)
			if r.code != 200 || secret == "" {
				t.Fatalf("setup: %d %s", r.code, r.raw)
			}
			if r := e.do("POST", "/mss-login/api/mfa/verify-setup", map[string]string{"mfa_temp_token": enrol, "code": "000000"}, ip); r.code != 401 {
				t.Fatalf("wrong enrolment code accepted: %d", r.code)
			}
			// The wrong code used the challenge up: start over.
			enrol = login().body["mfa_temp_token"].(string)
			r = e.do("POST", "/mss-login/api/mfa/setup", map[string]string{"mfa_temp_token": enrol}, ip)
			secret = r.body["secret"].(string)
			code, _ := totp.GenerateCode(secret, time.Now())
			r = e.do("POST", "/mss-login/api/mfa/verify-setup", map[string]string{"mfa_temp_token": enrol, "code": code}, ip)
			backups, _ := r.body["backup_codes"].([]any)
			if r.code != 200 || len(backups) != 10 || r.body["jwt_token"] == nil {
				t.Fatalf("verify-setup: %d %s", r.code, r.raw)
			}
			session := r.body["jwt_token"].(string)

			// Enrolment never overwrites: not with a session, not with a login challenge.
			if r := e.do("POST", "/mss-login/api/mfa/setup", nil, bearer(session), ip); r.code != 409 {
				t.Fatalf("re-enrolment over an existing one: %d %s", r.code, r.raw)
			}
			r = login()
			if r.body["mfa_required"] != true {
				t.Fatalf("second factor not required: %s", r.raw)
			}
			challenge := r.body["mfa_temp_token"].(string)
			if r := e.do("POST", "/mss-login/api/mfa/setup", map[string]string{"mfa_temp_token": challenge}, ip); r.code != 401 {
				t.Fatalf("a login challenge started an enrolment: %d %s", r.code, r.raw)
			}
			// The code already used at enrolment is a replay.
			if r := e.do("POST", "/mss-login/api/mfa/verify", map[string]string{"mfa_temp_token": challenge, "code": code}, ip); r.code != 401 {
				t.Fatalf("replayed code accepted: %d %s", r.code, r.raw)
			}
			// A backup code works once.
			challenge = login().body["mfa_temp_token"].(string)
			r = e.do("POST", "/mss-login/api/mfa/verify", map[string]string{"mfa_temp_token": challenge, "backup_code": backups[3].(string)}, ip)
			if r.code != 200 || r.body["jwt_token"] == nil {
				t.Fatalf("backup code: %d %s", r.code, r.raw)
			}
			if r := e.do("POST", "/mss-login/api/mfa/verify", map[string]string{"mfa_temp_token": challenge, "backup_code": backups[4].(string)}, ip); r.code != 401 {
				t.Fatalf("a used challenge worked again: %d", r.code)
			}
			challenge = login().body["mfa_temp_token"].(string)
			if r := e.do("POST", "/mss-login/api/mfa/verify", map[string]string{"mfa_temp_token": challenge, "backup_code": backups[3].(string)}, ip); r.code != 401 {
				t.Fatalf("a used backup code worked again: %d", r.code)
			}

			// The right password does not reset the count that limits guessing codes: password,
			// wrong code, again and again, from one address, reaches the cooldown.
			guesser := from("192.0.2.61")
			refused := false
			for i := 0; i < 6 && !refused; i++ {
				r := e.do("POST", "/login", map[string]string{"username": "owner", "password": ownerPassword}, guesser)
				ch, _ := r.body["mfa_temp_token"].(string)
				if r.code == 403 {
					refused = true
					break
				}
				r = e.do("POST", "/mss-login/api/mfa/verify", map[string]string{"mfa_temp_token": ch, "code": "000000"}, guesser)
				refused = r.code == 403
			}
			if !refused {
				t.Fatal("six wrong codes, each after the right password, and no cooldown")
			}

			// Recovery: only from recovery_mode_hosts, decided on the trusted client address.
			if r := e.do("POST", "/api/mss-login/recovery/reset-mfa", nil, from("192.0.2.9")); r.code != 403 {
				t.Fatalf("recovery from another host: %d %s", r.code, r.raw)
			}
			if r := e.do("POST", "/api/mss-login/recovery/reset-mfa", nil, from("127.0.0.1")); r.code != 200 {
				t.Fatalf("recovery from loopback: %d %s", r.code, r.raw)
			}
			if r := login(); r.body["mfa_setup_required"] != true {
				t.Fatalf("after recovery the owner must enrol again: %s", r.raw)
			}
		})
	}
}

// The account page's MFA controls: new backup codes and turning MFA off each need the password
// and a current code; the old backup codes stop working.
func TestAccountMFAControls(t *testing.T) {
	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	db := testenv.Open(t, store.SQLite)
	e := startWith(t, db, withMFA, authserver.Options{Now: now})
	e.bootstrap()
	ip := from("192.0.2.61")
	enrol := e.do("POST", "/login", map[string]string{"username": "owner", "password": ownerPassword}, ip).body["mfa_temp_token"].(string)
	secret := e.do("POST", "/mss-login/api/mfa/setup", map[string]string{"mfa_temp_token": enrol}, ip).body["secret"].(string)
	code, _ := totp.GenerateCode(secret, now())
	r := e.do("POST", "/mss-login/api/mfa/verify-setup", map[string]string{"mfa_temp_token": enrol, "code": code}, ip)
	session, _ := r.body["jwt_token"].(string)
	oldBackups, _ := r.body["backup_codes"].([]any)
	if session == "" || len(oldBackups) == 0 {
		t.Fatalf("enrolment: %d %s", r.code, r.raw)
	}
	page := func(fields map[string]string) resp {
		return e.do("POST", "/mss-login/account/mfa", fields, bearer(session), ip, "Accept: text/html")
	}
	advance(60 * time.Second)
	next, _ := totp.GenerateCode(secret, now())
	if r := page(map[string]string{"action": "backup-codes", "password": "wrong-pass-1!", "code": next}); r.code != 401 || !strings.Contains(r.raw, "password is not right") {
		t.Errorf("new backup codes with a wrong password: %d", r.code)
	}
	r = page(map[string]string{"action": "backup-codes", "password": ownerPassword, "code": next})
	if r.code != 200 || !strings.Contains(r.raw, "New backup codes") {
		t.Fatalf("new backup codes: %d %.300s", r.code, r.raw)
	}
	challenge := e.do("POST", "/login", map[string]string{"username": "owner", "password": ownerPassword}, ip).body["mfa_temp_token"].(string)
	if r := e.do("POST", "/mss-login/api/mfa/verify", map[string]string{"mfa_temp_token": challenge, "backup_code": oldBackups[0].(string)}, ip); r.code != 401 {
		t.Errorf("an old backup code still works: %d", r.code)
	}
	if r := page(map[string]string{"action": "disable", "password": ownerPassword, "code": next}); r.code != 401 {
		t.Errorf("turning MFA off with a code already used: %d", r.code)
	}
	advance(60 * time.Second)
	later, _ := totp.GenerateCode(secret, now())
	if r := page(map[string]string{"action": "disable", "password": ownerPassword, "code": later}); r.code != 200 || !strings.Contains(r.raw, "Two-factor sign-in is off") {
		t.Fatalf("turning MFA off: %d %.300s", r.code, r.raw)
	}
	if u, _ := db.UserByName(context.Background(), "owner"); u.MFAEnabled {
		t.Error("MFA still on")
	}
}
