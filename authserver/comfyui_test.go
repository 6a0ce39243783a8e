package authserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The auth server in front of a real ComfyUI (v0.8.0, --multi-user, CPU, no models): a user's
// first request gets a ComfyUI user id, a model-free graph runs and its image is served, the
// progress socket works, and what the rewrite does to the query and cookies (rebuilt from their
// parsed forms, credentials out) is what the real ComfyUI reads correctly.
func TestRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	e := start(t, testenv.Open(t, store.SQLite), func(c *config.Config) { c.UpstreamURL = comfy })
	owner := e.bootstrap()
	name := fmt.Sprintf("rita%d", time.Now().UnixNano()%1e9) // the ComfyUI is shared by the test run
	if r := e.do("POST", "/mss-login/api/users", map[string]string{"username": name, "password": "Rita-pass-1!", "role": "user"}, bearer(owner)); r.code != 201 {
		t.Fatal(r.raw)
	}
	rita := e.login(name, "Rita-pass-1!", "192.0.2.240")

	// ComfyUI's own answer, through the proxy: the user exists there now, under an id of its own.
	r := e.do("GET", "/api/users", nil, bearer(rita))
	if r.code != 200 || !strings.Contains(r.raw, `"`+name+`"`) {
		t.Fatalf("GET /api/users: %d %s", r.code, r.raw)
	}

	// A setting saved through the bulk route lands in her settings, read back by ComfyUI.
	if r := e.do("POST", "/api/settings", map[string]any{"Comfy.ColorPalette": "light"}, bearer(rita)); r.code != 200 {
		t.Fatalf("POST /api/settings: %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/api/settings", nil, bearer(rita)); r.code != 200 || r.body["Comfy.ColorPalette"] != "light" {
		t.Fatalf("GET /api/settings: %d %s", r.code, r.raw)
	}
	if r := e.do("GET", "/api/settings", nil, bearer(owner)); r.body["Comfy.ColorPalette"] == "light" {
		t.Fatal("the owner sees rita's setting: comfy-user was not hers")
	}

	// The progress socket, with the token under an encoded key (stripped before ComfyUI).
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?clientId=rita-tab&%74oken="+rita, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, msg, err := ws.Read(ctx); err != nil || !strings.Contains(string(msg), `"status"`) {
		t.Fatalf("first message %s %v", msg, err)
	}

	graph := map[string]any{"client_id": "rita-tab", "prompt": map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 255}},
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "mss-test"}},
	}}
	r = e.do("POST", "/api/prompt", graph, bearer(rita))
	id, _ := r.body["prompt_id"].(string)
	if r.code != 200 || id == "" {
		t.Fatalf("POST /api/prompt: %d %s", r.code, r.raw)
	}
	// Her socket hears the prompt run.
	for done := false; !done; {
		_, msg, err := ws.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for the prompt on /ws: %v", err)
		}
		var m struct {
			Type string `json:"type"`
			Data struct {
				PromptID string `json:"prompt_id"`
			} `json:"data"`
		}
		_ = json.Unmarshal(msg, &m)
		done = m.Type == "execution_success" && m.Data.PromptID == id
	}
	var image struct{ Filename, Subfolder, Type string }
	eventually(t, "the prompt is in the history", func() bool {
		r := e.do("GET", "/api/history/"+id, nil, bearer(rita))
		var h map[string]struct {
			Outputs map[string]struct {
				Images []struct{ Filename, Subfolder, Type string }
			}
		}
		_ = json.Unmarshal([]byte(r.raw), &h)
		if imgs := h[id].Outputs["2"].Images; len(imgs) == 1 {
			image = imgs[0]
			return true
		}
		return false
	})
	// The image, with the token in the query next to ComfyUI's own parameters: the rebuilt
	// query must be the one ComfyUI reads.
	q := url.Values{"filename": {image.Filename}, "subfolder": {image.Subfolder}, "type": {image.Type}}
	for _, cred := range []string{"token=" + rita, "%74oken=" + rita} {
		req, _ := http.NewRequest("GET", e.url+"/api/view?"+q.Encode()+"&"+cred, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET /api/view?…&%s: %d %s", strings.SplitN(cred, "=", 2)[0], res.StatusCode, res.Header.Get("Content-Type"))
		}
	}
	// A second Cookie line carries the session; ComfyUI still answers as her.
	if r := e.do("GET", "/api/settings", nil, "Cookie: theme=dark", "Cookie: jwt_token="+rita); r.code != 200 || r.body["Comfy.ColorPalette"] != "light" {
		t.Fatalf("session in a second Cookie line: %d %s", r.code, r.raw)
	}
	// The manager's /v2 routes never reach ComfyUI for her.
	if r := e.do("POST", "/api/v2/manager/queue/task", map[string]any{}, bearer(rita)); r.code != 403 {
		t.Fatalf("manager route: %d %s", r.code, r.raw)
	}
}
