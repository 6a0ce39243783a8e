package authserver_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
	"sigs.k8s.io/yaml"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The admin console in headless Chromium, as the owner: the users page, a user created, given
// another role, disabled, granted a model and revoked, and the audit log that lists each
// change. A plain user gets 403 on every console route; a cross-site POST to a console action
// is refused.
func TestBrowserConsole(t *testing.T) {
	ctx := browser(t)
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, nil)
	owner := e.bootstrap()
	shot := func(name string) {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		dir := os.Getenv(testenv.Artifacts)
		if dir == "" {
			dir = filepath.Join("..", "bin", "test-artifacts")
		}
		if err == nil && os.MkdirAll(dir, 0o755) == nil {
			_ = os.WriteFile(filepath.Join(dir, "console-"+name+".png"), png, 0o644)
		}
	}
	text := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText`))
		return s
	}
	// until waits for the page to say want (a form's answer replaces the page).
	until := func(want string) chromedp.Action[chromedp.Void] {
		check := chromedp.Evaluate[bool](`!!document.body && document.body.innerText.includes(` + strconv.Quote(want) + `)`)
		return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
			deadline := time.Now().Add(15 * time.Second)
			for {
				if ok, err := check(ctx, tg); err == nil && ok { // errors while the page is replaced
					return chromedp.Void{}, nil
				}
				if time.Now().After(deadline) {
					return chromedp.Void{}, fmt.Errorf("the page does not say %q within 15 s", want)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	step := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			shot("failed")
			t.Fatalf("%s: %v\n%s", what, err, text())
		}
	}
	step("sign in", chromedp.Navigate(e.url+"/login?next=%2Fmss-login%2Fadmin"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "owner"), chromedp.SendKeys(chromedp.ID("password"), ownerPassword),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.CSS("table")))
	if got := text(); !strings.Contains(got, "owner") || !strings.Contains(got, "created here") {
		t.Fatalf("the users page: %s", got)
	}
	step("create a user", chromedp.SendKeys(chromedp.ID("username"), "cora"), chromedp.SendKeys(chromedp.ID("password"), "Cora-pass-1!"),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("role-cora")))
	shot("users")
	step("give cora the power role", chromedp.SetValue(chromedp.ID("role-cora"), "power"),
		chromedp.Submit(chromedp.ID("role-cora")), until("cora now has the role power"))
	if got := text(); !strings.Contains(got, "cora now has the role power") {
		t.Errorf("after the role change: %s", got)
	}
	step("disable cora", chromedp.Click(`//tr[td[1][normalize-space()="cora"]]//button[normalize-space()="Disable"]`),
		until("cora is disabled."))
	if u, _ := db.UserByName(context.Background(), "cora"); u.Role != "power" || !u.Disabled {
		t.Errorf("cora's row: role %s disabled %t", u.Role, u.Disabled)
	}
	step("cora's models", chromedp.Navigate(e.url+"/mss-login/admin/grants/cora"), chromedp.WaitVisible(chromedp.ID("pattern")),
		chromedp.SetValue(chromedp.ID("folder"), "loras"), chromedp.SendKeys(chromedp.ID("pattern"), "sdxl/*"),
		chromedp.Submit(chromedp.ID("pattern")), until("Granted loras/sdxl/*"))
	shot("grants")
	if got := text(); !strings.Contains(got, "Granted loras/sdxl/*") || !strings.Contains(got, "granted here") {
		t.Errorf("after granting: %s", got)
	}
	step("revoke", chromedp.Click(`//button[normalize-space()="Revoke"]`), until("Revoked loras/sdxl/*"))
	if got := text(); !strings.Contains(got, "Revoked loras/sdxl/*") {
		t.Errorf("after revoking: %s", got)
	}
	// Roles: a flag set from the browser; a role a resource owns is read-only.
	if err := db.PutRole(context.Background(), roles.Role{Name: "gitrole", Permissions: map[string]bool{roles.CanRun: true}}, "ComfyRole/studio/gitrole"); err != nil {
		t.Fatal(err)
	}
	step("the roles", chromedp.Navigate(e.url+"/mss-login/admin/roles"), until("managed by ComfyRole studio/gitrole"),
		chromedp.Click(`//form[@action="/mss-login/admin/roles/user"]//input[@name="can_view_console"]`),
		chromedp.Click(`//button[normalize-space()="Save user"]`), until("Role user saved."))
	shot("roles")
	if r, _ := db.Role(context.Background(), "user"); !r.Permissions[roles.CanViewConsole] || !r.Permissions[roles.CanRun] {
		t.Errorf("the user role after saving: %v", r.Permissions)
	}
	if r := e.do("POST", "/mss-login/admin/roles/gitrole", map[string]string{"can_upload": "true"}, bearer(owner)); r.code != 409 {
		t.Errorf("saving a role a ComfyRole owns: %d", r.code)
	}
	// IP rules and lockouts: a rule added here, a ban lifted (as kubectl delete lockout does).
	if _, err := db.BanIP(context.Background(), netip.MustParseAddr("198.51.100.99"), time.Now(), time.Now().Add(time.Hour), "10 failed logins"); err != nil {
		t.Fatal(err)
	}
	step("add a rule", chromedp.Navigate(e.url+"/mss-login/admin/ip"), chromedp.WaitVisible(chromedp.ID("cidr")),
		chromedp.SendKeys(chromedp.ID("cidr"), "203.0.113.0/24"), chromedp.SendKeys(chromedp.ID("reason"), "scanner"),
		chromedp.Submit(chromedp.ID("cidr")), until("Added: deny 203.0.113.0/24."))
	shot("ip")
	if got := text(); !strings.Contains(got, "198.51.100.99/32") || !strings.Contains(got, "failed logins") {
		t.Errorf("the IP page does not list the ban: %s", got)
	}
	step("lift the ban", chromedp.Click(`//button[normalize-space()="Lift ban"]`), until("Ban of 198.51.100.99 lifted."))
	if bans, _ := db.Bans(context.Background(), time.Now()); len(bans) != 0 {
		t.Errorf("bans after lifting: %+v", bans)
	}
	// Status: the effective configuration, no secret in it.
	step("the status", chromedp.Navigate(e.url+"/mss-login/admin/status"), until("Effective configuration"))
	if got := text(); !strings.Contains(got, `"upstream_url"`) || strings.Contains(got, testenv.Secret) || strings.Contains(got, ownerPassword) {
		t.Errorf("the status page (config shown: %t, secret shown: %t)", strings.Contains(got, `"upstream_url"`), strings.Contains(got, testenv.Secret))
	}
	// Sessions and tokens: any user's, revocable; a revoked token stops working.
	r := e.do("POST", "/mss-login/api/tokens", map[string]string{"password": ownerPassword, "label": "render-farm"}, bearer(owner))
	apiToken, _ := r.body["token"].(string)
	if apiToken == "" {
		t.Fatalf("creating a token: %d %s", r.code, r.raw)
	}
	step("the sessions and tokens", chromedp.Navigate(e.url+"/mss-login/admin/access"), until("render-farm"))
	shot("access")
	step("revoke the token", chromedp.Click(`//tr[td[2][normalize-space()="render-farm"]]//button`), until("Revoked."))
	eventually(t, "the revoked token refused", func() bool { return e.do("GET", "/mss-login/api/me", nil, bearer(apiToken)).code == 401 })
	step("the audit log", chromedp.Navigate(e.url+"/mss-login/admin/audit?user=owner"), chromedp.WaitVisible(chromedp.CSS("table")))
	shot("audit")
	got := text()
	for _, want := range []string{"user.created", "user.role_changed", "user.disabled", "model_grant.added", "model_grant.removed", "ip_rule.added", "ban.lifted", "token.revoked", "role.updated"} {
		if !strings.Contains(got, want) {
			t.Errorf("the audit page lacks %s: %s", want, got)
		}
	}

	// Reset a password from the console: the new one works, the old one not.
	if r := e.do("POST", "/mss-login/admin/users/cora", map[string]string{"action": "enable"}, bearer(owner)); r.code != 200 {
		t.Fatalf("enable cora: %d", r.code)
	}
	if r := e.do("POST", "/mss-login/admin/users/cora", map[string]string{"action": "reset-password", "new_password": "Cora-new-pass-2!"}, bearer(owner)); r.code != 200 {
		t.Fatalf("reset cora's password: %d %.300s", r.code, r.raw)
	}
	e.login("cora", "Cora-new-pass-2!", "192.0.2.181")
	if r := e.do("POST", "/login", map[string]string{"username": "cora", "password": "Cora-pass-1!"}, from("192.0.2.182")); r.code == 200 {
		t.Error("cora's old password still works")
	}
	// Export as manifest: the ComfyUser and the ComfyRole that would manage them from Git.
	var cu authv1alpha1.ComfyUser
	if r := e.do("GET", "/mss-login/admin/export/user/cora", nil, bearer(owner)); r.code != 200 || yaml.Unmarshal([]byte(r.raw), &cu) != nil ||
		cu.Kind != "ComfyUser" || cu.Spec.Username != "cora" || cu.Spec.Role != "power" || !cu.Spec.Adopt || cu.Name != "cora" {
		t.Errorf("cora's manifest: %d %s", r.code, r.raw)
	}
	var cr authv1alpha1.ComfyRole
	if r := e.do("GET", "/mss-login/admin/export/role/user", nil, bearer(owner)); r.code != 200 || yaml.Unmarshal([]byte(r.raw), &cr) != nil ||
		cr.Spec.RoleName != "user" || !cr.Spec.Permissions[roles.CanViewConsole] || cr.Spec.Permissions[roles.CanDownloadModels] {
		t.Errorf("the user role's manifest: %d %s", r.code, r.raw)
	}
	// An admin who is not the owner walks every console page too.
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "adam", "password": "Adam-pass-1!", "role": "admin"}, bearer(owner))
	step("sign out", chromedp.Navigate(e.url+"/logout"), chromedp.WaitVisible(chromedp.CSS("button")), chromedp.Click(chromedp.CSS("button")),
		chromedp.WaitVisible(chromedp.ID("username")))
	step("sign in as an admin", chromedp.SendKeys(chromedp.ID("username"), "adam"), chromedp.SendKeys(chromedp.ID("password"), "Adam-pass-1!"),
		chromedp.Submit(chromedp.ID("password")), until("ComfyUI stand-in"))
	for path, h1 := range map[string]string{"/mss-login/admin": "Users", "/mss-login/admin/roles": "Roles", "/mss-login/admin/ip": "IP rules and lockouts",
		"/mss-login/admin/access?user=cora": "Sessions and tokens of cora", "/mss-login/admin/audit?since=2000-01-01T00:00": "Audit log",
		"/mss-login/admin/status": "Status", "/mss-login/admin/grants/cora": "Models of cora"} {
		step("the admin opens "+path, chromedp.Navigate(e.url+path), until(h1))
		if got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("h1").textContent`)); got != h1 {
			t.Errorf("%s as an admin: h1 %q", path, got)
		}
	}
	step("cora's sessions only", chromedp.Navigate(e.url+"/mss-login/admin/access?user=cora"), until("Sessions and tokens of cora"))
	if rows, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`[...document.querySelectorAll("tbody tr td:first-child")].map(td => td.textContent).join(",")`)); !strings.Contains(rows, "cora") || strings.Contains(rows, "adam") || strings.Contains(rows, "owner") {
		t.Errorf("cora's sessions and tokens list: %q", rows)
	}
	// A plain user: 403 everywhere in the console; a cross-site form post is refused.
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "dirk", "password": "Dirk-pass-1!", "role": "user"}, bearer(owner))
	dirk := e.login("dirk", "Dirk-pass-1!", "192.0.2.180")
	// And in the browser: the plain user's console is a refusal, their account page explains.
	step("sign out the admin", chromedp.Navigate(e.url+"/logout"), chromedp.WaitVisible(chromedp.CSS("button")), chromedp.Click(chromedp.CSS("button")),
		chromedp.WaitVisible(chromedp.ID("username")))
	step("sign in as a plain user", chromedp.SendKeys(chromedp.ID("username"), "dirk"), chromedp.SendKeys(chromedp.ID("password"), "Dirk-pass-1!"),
		chromedp.Submit(chromedp.ID("password")), until("ComfyUI stand-in"))
	for _, p := range []string{"/mss-login/admin", "/mss-login/admin/audit", "/mss-login/admin/roles"} {
		step("a plain user opens "+p, chromedp.Navigate(e.url+p), until("403"))
		shot("plain-user")
	}
	step("the plain user's account page", chromedp.Navigate(e.url+"/mss-login/account"), until("may not have API tokens"))
	// The account page says why there is no token section, and the MFA state.
	if r := e.do("GET", "/mss-login/account", nil, bearer(dirk), "Accept: text/html"); !strings.Contains(r.raw, "may not have API tokens (the can_have_api_tokens permission)") ||
		!strings.Contains(r.raw, "Two-factor sign-in") {
		t.Errorf("dirk's account page: %d %.400s", r.code, r.raw)
	}
	for _, r := range []struct{ method, path string }{{"GET", "/mss-login/admin"}, {"GET", "/mss-login/admin/users"},
		{"POST", "/mss-login/admin/users/cora"}, {"GET", "/mss-login/admin/audit"}, {"GET", "/mss-login/admin/grants/cora"},
		{"POST", "/mss-login/admin/grants/cora"}, {"GET", "/mss-login/admin/ip"}, {"POST", "/mss-login/admin/ip"},
		{"GET", "/mss-login/admin/access"}, {"POST", "/mss-login/admin/access"},
		{"GET", "/mss-login/admin/roles"}, {"POST", "/mss-login/admin/roles/user"}, {"GET", "/mss-login/admin/status"},
		{"GET", "/mss-login/admin/export/user/cora"},
		{"GET", "/MSS-LOGIN/Admin/users"}} {
		if got := e.do(r.method, r.path, map[string]string{"action": "delete"}, bearer(dirk)); got.code != 403 {
			t.Errorf("a plain user %s %s: %d", r.method, r.path, got.code)
		}
	}
	for _, p := range []string{"/mss-login/admin/users/cora", "/mss-login/admin/grants/cora", "/mss-login/admin/roles/user",
		"/mss-login/admin/ip", "/mss-login/admin/access", "/register"} {
		if r := e.do("POST", p, map[string]string{"action": "delete"}, "Cookie: jwt_token="+owner,
			"Origin: https://evil.example", "Sec-Fetch-Site: cross-site"); r.code != 403 || r.body["code"] != "CROSS_SITE" {
			t.Errorf("a cross-site POST to %s: %d %s", p, r.code, r.raw)
		}
	}
	if _, err := db.UserByName(context.Background(), "cora"); err != nil {
		t.Error("cora was deleted by a cross-site post")
	}
}

// MFA in the browser: the enrolment page, a wrong code tried again on the same page with the
// same key, the backup codes on a page (not JSON), and at the next sign-in a wrong code that
// can be corrected on the page, then a backup code.
func TestBrowserMFA(t *testing.T) {
	ctx := browser(t)
	e := start(t, testenv.Open(t, store.SQLite), withMFA)
	e.bootstrap()
	text := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return s
	}
	value := func(js string) string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		return s
	}
	wait := func(what, want string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for !strings.Contains(text(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: the page does not say %q:\n%s", what, want, text())
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v\n%s", what, err, text())
		}
	}
	signIn := func() {
		do("sign in", chromedp.Navigate(e.url+"/login?next=%2F"), chromedp.WaitVisible(chromedp.ID("username")),
			chromedp.SendKeys(chromedp.ID("username"), "owner"), chromedp.SendKeys(chromedp.ID("password"), ownerPassword),
			chromedp.Submit(chromedp.ID("password")))
	}
	signIn()
	wait("enrolment", "Set up two-step verification")
	key := value(`document.querySelector("code").textContent`)
	do("a wrong code", chromedp.SendKeys(chromedp.ID("code"), "000000"), chromedp.Submit(chromedp.ID("code")))
	wait("the wrong code", "That code is not right")
	if again := value(`document.querySelector("main code").textContent`); again != key || key == "" {
		t.Fatalf("the key changed after a wrong code: %q then %q", key, again)
	}
	code, _ := totp.GenerateCode(key, time.Now())
	do("the right code", chromedp.SendKeys(chromedp.ID("code"), code), chromedp.Submit(chromedp.ID("code")))
	wait("enabled", "Two-step verification is on")
	backup := value(`document.querySelector(".codes code").textContent`)
	if backup == "" || strings.Contains(text(), `"backup_codes"`) {
		t.Fatalf("the backup codes page: %s", text())
	}
	do("sign out", chromedp.Navigate(e.url+"/logout"), chromedp.WaitVisible(chromedp.CSS("button")), chromedp.Click(chromedp.CSS("button")),
		chromedp.WaitVisible(chromedp.ID("username")))
	signIn()
	wait("the second step", "Enter the 6-digit code")
	do("a wrong code at sign-in", chromedp.SendKeys(chromedp.ID("code"), "111111"), chromedp.Submit(chromedp.ID("code")))
	wait("the wrong code at sign-in", "That code is not right")
	do("a backup code", chromedp.SendKeys(chromedp.ID("backup_code"), backup), chromedp.Submit(chromedp.ID("backup_code")))
	wait("signed in with the backup code", "ComfyUI stand-in")
}
