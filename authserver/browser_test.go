package authserver_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// browser starts headless Chromium (Debian's) for one test: offline flags, a fresh profile.
func browser(t *testing.T) context.Context {
	exec := testenv.Require(t, testenv.Chromium)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exec), chromedp.Headless, chromedp.NoSandbox, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-quic", true), chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.WindowSize(1000, 800),
	}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelC := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelC(); cancelB(); cancelA() })
	return ctx
}

// A person logs in through the page, reaches the proxied ComfyUI page, and logs out.
func TestBrowserLoginFlow(t *testing.T) {
	ctx := browser(t)
	e := start(t, testenv.Open(t, store.SQLite), nil)
	e.bootstrap()

	// ComfyUI's page sends an anonymous visitor to the login page, keeping where they went.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login?next=%2F") {
		t.Fatalf("anonymous visit landed on %s", loc)
	}
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	dir := os.Getenv(testenv.Artifacts)
	if dir == "" {
		dir = filepath.Join("..", "bin", "test-artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err == nil {
		_ = os.WriteFile(filepath.Join(dir, "login-page.png"), shot, 0o644)
	}

	// The page's CSP refuses a script injected into it.
	injected, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
		const s = document.createElement('script');
		s.textContent = 'window.__injected = true';
		document.body.appendChild(s);
		return window.__injected === true;
	})()`))
	if err != nil || injected {
		t.Fatalf("an injected inline script ran (%v, %v)", injected, err)
	}

	// Wrong password: an error on the page, still on the login page.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("username"), "owner"),
		chromedp.SendKeys(chromedp.ID("password"), "wrong-pass-1!"), chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.CSS(".error"))); err != nil {
		t.Fatal(err)
	}
	// Right password: back to ComfyUI's page, through the proxy.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/login?next=%2F"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "owner"), chromedp.SendKeys(chromedp.ID("password"), ownerPassword),
		chromedp.Submit(chromedp.ID("password"))); err != nil {
		t.Fatal(err)
	}
	waitLeave(t, ctx, "/login")
	heading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
	if err != nil || heading != "ComfyUI stand-in" {
		t.Fatalf("after login the page shows %q (%v)", heading, err)
	}
	if e.stub.Last().ComfyUser != "owner" {
		t.Fatalf("ComfyUI saw comfy-user %q", e.stub.Last().ComfyUser)
	}

	// The account page: create an API token (password asked again), shown once.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/mss-login/account"), chromedp.WaitVisible(chromedp.ID("label")),
		chromedp.SendKeys(chromedp.ID("label"), "krita"), chromedp.SendKeys(chromedp.ID("token_password"), ownerPassword),
		chromedp.Submit(chromedp.ID("token_password")), chromedp.WaitVisible(chromedp.CSS("code.token"))); err != nil {
		t.Fatal(err)
	}
	tok, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("code.token")))
	if err != nil || !strings.HasPrefix(tok, "mssl_") {
		t.Fatalf("token on the account page: %q %v", tok, err)
	}
	if r := e.do("GET", "/api/queue", nil, bearer(tok)); r.code != 200 {
		t.Fatalf("the token from the page does not work: %d", r.code)
	}

	// Log out through the confirmation page; ComfyUI is out of reach again.
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/logout"), chromedp.WaitVisible(chromedp.CSS("button")),
		chromedp.Click(chromedp.CSS("button")), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/"), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.Contains(loc, "/login") {
		t.Fatalf("after logout the visit landed on %s", loc)
	}
}

// waitLeave waits until the page is no longer at a URL containing path (a form submission
// navigates asynchronously).
func waitLeave(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		loc, err := chromedp.Run(ctx, chromedp.Location())
		if err == nil && !strings.Contains(loc, path) {
			if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("h1"))); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("still at %s (%v)", loc, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
