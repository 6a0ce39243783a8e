package authserver_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// Each role signs in and the real ComfyUI frontend opens on the graph as that user: no screen
// to pick an account from, no "New user" (accounts come from mss-login). The UI's own client
// sees only the user's history (an admin's, everyone's); the auth server's extension shows who
// is signed in, hides what the role's ui_* flags switch off, and turns a refusal into a
// message in the UI.
func TestBrowserRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	testenv.Require(t, testenv.Chromium)
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, func(c *config.Config) { c.UpstreamURL = comfy })
	owner := e.bootstrap()
	// A role without the node library in its UI.
	painter := roles.Role{Name: "painter", Permissions: map[string]bool{roles.CanRun: true, roles.CanAccessAPI: true},
		UI: map[string]bool{"ui_node_library": false}}
	if err := db.PutRole(context.Background(), painter, ""); err != nil {
		t.Fatal(err)
	}
	suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
	// Someone else's prompt, in ComfyUI's history before anyone signs in.
	e.do("POST", "/mss-login/api/users", map[string]string{"username": "other" + suffix, "password": "Other-pass-1!", "role": "user"}, bearer(owner))
	othersPrompt := queueTiny(t, e, e.login("other"+suffix, "Other-pass-1!", "192.0.2.230"), 1)

	for _, c := range []struct {
		role      string
		seesAll   bool
		call      string // a call the role is refused, through the UI's own client
		refusal   string // what the UI then shows
		libraryOn bool
	}{
		{"admin", true, `fetchApi("/users", {method: "POST", body: JSON.stringify({username: "x"})})`, "Accounts come from mss-login", true},
		{"user", false, `fetchApi("/v2/manager/queue/status")`, "Manager Denied", true},
		{"guest", false, `fetchApi("/upload/image", {method: "POST", body: new FormData()})`, "Upload Denied", true},
		{"painter", false, `fetchApi("/upload/image", {method: "POST", body: new FormData()})`, "Upload Denied", false},
	} {
		t.Run(c.role, func(t *testing.T) {
			name := c.role + suffix
			if r := e.do("POST", "/mss-login/api/users", map[string]string{"username": name, "password": "Ivy-pass-1!", "role": c.role}, bearer(owner)); r.code != 201 {
				t.Fatal(r.raw)
			}
			own := queueTiny(t, e, e.login(name, "Ivy-pass-1!", "192.0.2.231"), len(c.role)+2)
			ctx := browser(t)
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
				_ = os.WriteFile(filepath.Join(dir, "comfyui-as-"+c.role+".png"), shot, 0o644)
			}
			if !graph || strings.Contains(text, "New user") {
				t.Fatalf("the UI did not open on the graph (graph %t); it shows: %.400s", graph, text)
			}
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
			if who := waitFor("the signed-in badge", `document.querySelector("#mss-login-user .mss-login-name")?.textContent ?? ""`); who != name+" ("+c.role+")" {
				t.Errorf("the badge says %q", who)
			}
			// The history as the UI's own client reads it.
			ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
				`window.comfyAPI.api.api.fetchApi("/history?max_items=10000").then(r => r.json()).then(h => Object.keys(h))`, chromedp.EvalAwaitPromise))
			if err != nil {
				t.Fatal(err)
			}
			has := func(id string) bool { return strings.Contains(strings.Join(ids, " "), id) }
			if !has(own) || has(othersPrompt) != c.seesAll {
				t.Errorf("the UI's history holds its own prompt: %t, another user's: %t (want %t)", has(own), has(othersPrompt), c.seesAll)
			}
			// The node library's tab: hidden exactly when the role's ui_node_library is off.
			visible := waitFor("the sidebar", `(() => { const b = document.querySelector(".node-library-tab-button, .workflows-tab-button");
				if (!b) return ""; const n = document.querySelector(".node-library-tab-button");
				return n && getComputedStyle(n).display !== "none" ? "shown" : "hidden"; })()`)
			if (visible == "shown") != c.libraryOn {
				t.Errorf("the node library tab is %s; the role's ui_node_library is %t", visible, c.libraryOn)
			}
			if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(window.comfyAPI.api.api.`+c.call+`, true)`)); err != nil {
				t.Fatal(err)
			}
			msg := waitFor("the refusal in the UI", `[...document.querySelectorAll(".p-toast-message")].map(e => e.textContent).join(" ")`)
			if !strings.Contains(msg, c.refusal) {
				t.Errorf("the UI shows %q for a refused call; want %q", msg, c.refusal)
			}
		})
	}
}

// queueTiny queues a model-free prompt (its own color, so ComfyUI's cache does not answer it
// from another's) and waits until it is in the history; it returns the prompt id.
func queueTiny(t *testing.T, e *env, token string, color int) string {
	t.Helper()
	r := e.do("POST", "/api/prompt", map[string]any{"prompt": map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": color}},
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "ui"}},
	}}, bearer(token))
	id, _ := r.body["prompt_id"].(string)
	if r.code != 200 || id == "" {
		t.Fatalf("queue: %d %s", r.code, r.raw)
	}
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(e.do("GET", "/api/history/"+id, nil, bearer(token)).raw, id) {
		if time.Now().After(deadline) {
			t.Fatalf("prompt %s did not run within 30 s", id)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return id
}
