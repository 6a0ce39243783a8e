package authserver_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// A user signs in and the real ComfyUI frontend opens on the graph as that user: no screen to
// pick an account from, no "New user" (accounts come from mss-login); the auth server's
// extension shows who is signed in and turns a refusal into a message in the UI.
func TestBrowserRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	ctx := browser(t)
	e := start(t, testenv.Open(t, store.SQLite), func(c *config.Config) { c.UpstreamURL = comfy })
	owner := e.bootstrap()
	name := fmt.Sprintf("ivy%d", time.Now().UnixNano()%1e9)
	e.do("POST", "/mss-login/api/users", map[string]string{"username": name, "password": "Ivy-pass-1!", "role": "user"}, bearer(owner))
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/login?next=%2F"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), name), chromedp.SendKeys(chromedp.ID("password"), "Ivy-pass-1!"),
		chromedp.Submit(chromedp.ID("password"))); err != nil {
		t.Fatal(err)
	}
	var text string
	var graph bool
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		text, _ = chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		graph, _ = chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector("canvas#graph-canvas, #graph-canvas")`))
		if graph || strings.Contains(text, "New user") {
			break
		}
	}
	shot, _ := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	dir := os.Getenv(testenv.Artifacts)
	if dir == "" {
		dir = filepath.Join("..", "bin", "test-artifacts")
	}
	if os.MkdirAll(dir, 0o755) == nil {
		_ = os.WriteFile(filepath.Join(dir, "comfyui-as-user.png"), shot, 0o644)
	}
	if !graph || strings.Contains(text, "New user") {
		t.Fatalf("the UI did not open on the graph (graph %t); it shows: %.400s", graph, text)
	}
	// The auth server's extension: who is signed in, and a refusal shown to the person.
	waitFor := func(what, js string) string {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
			if err == nil && v != "" {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within 20 s (%v)", what, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if who := waitFor("the signed-in badge", `document.querySelector("#mss-login-user .mss-login-name")?.textContent ?? ""`); who != name+" (user)" {
		t.Errorf("the badge says %q", who)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.comfyAPI.api.api.fetchApi("/v2/manager/queue/status"), true)`)); err != nil {
		t.Fatal(err)
	}
	msg := waitFor("the refusal in the UI", `[...document.querySelectorAll(".p-toast-message")].map(e => e.textContent).join(" ")`)
	if !strings.Contains(msg, "Manager Denied") {
		t.Errorf("the UI shows %q for a refused manager call", msg)
	}
}
