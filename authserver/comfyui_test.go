package authserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/authserver"
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

	// Her first request gave her a ComfyUI user of her own (ComfyUI's list, asked directly).
	e.do("GET", "/api/system_stats", nil, bearer(rita))
	if res, err := http.Get(comfy + "/api/users"); err != nil {
		t.Fatal(err)
	} else {
		raw, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !strings.Contains(string(raw), `"`+name+`"`) {
			t.Fatalf("ComfyUI's users: %s", raw)
		}
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
	r := e.do("POST", "/api/prompt", graph, bearer(rita))
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

// Two users and an admin share one real ComfyUI through two auth server replicas: each user's
// history and jobs hold only their own prompts, deletes and clears touch only their own, a
// prompt id cannot be taken over, and freeing memory is for admins; with isolation switched off
// the same checks see the other user's prompt (so they can fail).
func TestIsolationRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	for _, backend := range []store.Backend{store.SQLite, store.PostgreSQL} {
		t.Run(string(backend), func(t *testing.T) {
			db := testenv.Open(t, backend)
			up := func(c *config.Config) { c.UpstreamURL = comfy }
			a, b := start(t, db, up), start(t, db, up)
			owner := a.bootstrap()
			suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
			token := map[string]string{}
			for _, n := range []string{"ann", "ben"} {
				if r := a.do("POST", "/mss-login/api/users", map[string]string{"username": n + suffix, "password": "Iso-pass-1!", "role": "user"},
					bearer(owner)); r.code != 201 {
					t.Fatal(r.raw)
				}
				token[n] = a.login(n+suffix, "Iso-pass-1!", "192.0.2.241")
			}
			queue := func(e *env, who string) string {
				t.Helper()
				// Another color per user: ComfyUI answers a node with the inputs of one it ran
				// before from its cache, and a preview node's cached answer names the same file.
				r := e.do("POST", "/api/prompt", map[string]any{"prompt": map[string]any{
					"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": len(who)*1000 + int(who[0])}},
					"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "iso"}},
					"3": map[string]any{"class_type": "PreviewImage", "inputs": map[string]any{"images": []any{"1", 0}}},
				}}, bearer(token[who]))
				id, _ := r.body["prompt_id"].(string)
				if r.code != 200 || id == "" {
					t.Fatalf("%s queues: %d %s", who, r.code, r.raw)
				}
				return id
			}
			annP, benP := queue(a, "ann"), queue(b, "ben")
			history := func(e *env, tok string) map[string]json.RawMessage {
				t.Helper()
				r := e.do("GET", "/api/history?max_items=10000", nil, bearer(tok))
				var h map[string]json.RawMessage
				if r.code != 200 || json.Unmarshal([]byte(r.raw), &h) != nil {
					t.Fatalf("GET /api/history: %d %.200s", r.code, r.raw)
				}
				return h
			}
			eventually(t, "both prompts ran", func() bool {
				h := history(a, owner)
				return h[annP] != nil && h[benP] != nil
			})
			// Outputs: written under the user's folder, served to the user (and admins) only.
			var entry struct {
				Outputs map[string]struct {
					Images []struct{ Filename, Subfolder, Type string }
				}
			}
			_ = json.Unmarshal(history(a, owner)[annP], &entry)
			if imgs := entry.Outputs["2"].Images; len(imgs) != 1 || imgs[0].Subfolder != "ann"+suffix {
				t.Fatalf("ann's output: %+v, want it in her folder", entry.Outputs)
			} else {
				view := "/api/view?" + url.Values{"filename": {imgs[0].Filename}, "subfolder": {imgs[0].Subfolder}, "type": {"output"}}.Encode()
				for who, want := range map[string]int{"ann": 200, "ben": 403} {
					if r := b.do("GET", view, nil, bearer(token[who])); r.code != want {
						t.Errorf("%s views ann's output: %d, want %d", who, r.code, want)
					}
				}
				if r := a.do("GET", view, nil, bearer(owner)); r.code != 200 {
					t.Errorf("the admin views ann's output: %d", r.code)
				}
				off := startWith(t, db, up, authserver.Options{DisableIsolation: true})
				if r := off.do("GET", view, nil, bearer(token["ben"])); r.code != 200 {
					t.Errorf("with isolation off ben does not get ann's output (%d): the check above proves nothing", r.code)
				}
			}
			// Previews: PreviewImage writes a random name to the temp directory; served to the
			// user whose prompt made it (and admins) only, however the query spells it.
			if imgs := entry.Outputs["3"].Images; len(imgs) != 1 || imgs[0].Type != "temp" {
				t.Errorf("ann's preview: %+v", entry.Outputs)
			} else {
				for _, q := range []url.Values{
					{"filename": {imgs[0].Filename}, "subfolder": {imgs[0].Subfolder}, "type": {"temp"}},
					{"filename": {imgs[0].Filename + " [temp]"}},
					{"filename": {imgs[0].Filename}, "subfolder": {"."}, "type": {"temp", "output"}},
				} {
					view := "/api/view?" + q.Encode()
					for who, want := range map[string]int{"ann": 200, "ben": 403} {
						if r := b.do("GET", view, nil, bearer(token[who])); r.code != want {
							t.Errorf("%s views ann's preview (%s): %d, want %d", who, q.Encode(), r.code, want)
						}
					}
					if r := a.do("GET", view, nil, bearer(owner)); r.code != 200 {
						t.Errorf("the admin views ann's preview: %d", r.code)
					}
					off := startWith(t, db, up, authserver.Options{DisableIsolation: true})
					if r := off.do("GET", view, nil, bearer(token["ben"])); r.code != 200 {
						t.Errorf("with isolation off ben does not get ann's preview (%d): the check above proves nothing", r.code)
					}
				}
			}
			if r := a.do("POST", "/api/prompt", map[string]any{"prompt": map[string]any{
				"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "../ben" + suffix + "/x"}},
			}}, bearer(token["ann"])); r.code != 400 {
				t.Errorf("a filename_prefix out of her folder: %d %s", r.code, r.raw)
			}
			// Uploads: into the user's input folder, served to the user only.
			upload := func(who, filename string) resp {
				var buf bytes.Buffer
				mw := multipart.NewWriter(&buf)
				fw, _ := mw.CreateFormFile("image", filename)
				img := image.NewRGBA(image.Rect(0, 0, 4, 4))
				_ = png.Encode(fw, img)
				_ = mw.WriteField("type", "input")
				mw.Close()
				req, _ := http.NewRequest("POST", a.url+"/api/upload/image", &buf)
				req.Header.Set("Content-Type", mw.FormDataContentType())
				req.Header.Set("Authorization", "Bearer "+token[who])
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				raw, _ := io.ReadAll(res.Body)
				out := resp{code: res.StatusCode, raw: string(raw)}
				_ = json.Unmarshal(raw, &out.body)
				return out
			}
			up1 := upload("ann", "iso-"+suffix+".png")
			if up1.code != 200 || up1.body["subfolder"] != "ann"+suffix {
				t.Fatalf("ann's upload: %d %s", up1.code, up1.raw)
			}
			inView := "/api/view?" + url.Values{"filename": {up1.body["name"].(string)}, "subfolder": {"ann" + suffix}, "type": {"input"}}.Encode()
			for who, want := range map[string]int{"ann": 200, "ben": 403} {
				if r := a.do("GET", inView, nil, bearer(token[who])); r.code != want {
					t.Errorf("%s views ann's upload: %d, want %d", who, r.code, want)
				}
			}
			if r := upload("ann", "../ben"+suffix+"/x.png"); r.code != 400 {
				t.Errorf("an upload named into ben's folder: %d %s", r.code, r.raw)
			}
			// LoadImage lists the input directory's files: not everyone's to a user.
			root := "root-" + suffix + ".png"
			if err := os.WriteFile(filepath.Join(testenv.Require(t, testenv.ComfyUIDir), "input", root), pngBytes(t), 0o644); err != nil {
				t.Fatal(err)
			}
			for who, want := range map[string]bool{"ann": false, "owner": true} {
				tok := owner
				if who == "ann" {
					tok = token["ann"]
				}
				r := a.do("GET", "/api/object_info/LoadImage", nil, bearer(tok))
				if r.code != 200 || !strings.Contains(r.raw, "image_upload") || strings.Contains(r.raw, root) != want {
					t.Errorf("%s's LoadImage options: %d, lists %s: %t, want %t (%.300s)", who, r.code, root, !want, want, r.raw)
				}
			}
			if h := history(b, token["ann"]); h[annP] == nil || h[benP] != nil {
				t.Errorf("ann's history on replica b: has hers %t, has ben's %t", h[annP] != nil, h[benP] != nil)
			}
			if h := history(a, token["ben"]); h[benP] == nil || h[annP] != nil {
				t.Errorf("ben's history on replica a: has his %t, has ann's %t", h[benP] != nil, h[annP] != nil)
			}
			if r := a.do("GET", "/api/history/"+benP, nil, bearer(token["ann"])); r.code != 200 || strings.Contains(r.raw, benP) {
				t.Errorf("ann reads ben's history entry: %d %.200s", r.code, r.raw)
			}
			if r := b.do("GET", "/api/jobs?limit=1000", nil, bearer(token["ann"])); r.code != 200 || !strings.Contains(r.raw, annP) || strings.Contains(r.raw, benP) {
				t.Errorf("ann's jobs: %d %.300s", r.code, r.raw)
			}
			if r := b.do("GET", "/api/jobs/"+benP, nil, bearer(token["ann"])); r.code != 404 {
				t.Errorf("ann reads ben's job: %d %.200s", r.code, r.raw)
			}
			if r := a.do("GET", "/api/queue", nil, bearer(token["ann"])); r.code != 200 || !strings.Contains(r.raw, "queue_pending") {
				t.Errorf("ann's queue: %d %.200s", r.code, r.raw)
			}
			// A prompt id is its owner's: ann cannot queue under ben's.
			if r := a.do("POST", "/api/prompt", map[string]any{"prompt_id": benP, "prompt": map[string]any{}}, bearer(token["ann"])); r.code != 409 {
				t.Errorf("ann reuses ben's prompt id: %d %s", r.code, r.raw)
			}
			// Deletes and clears: only her own.
			if r := a.do("POST", "/api/history", map[string]any{"delete": []string{benP}}, bearer(token["ann"])); r.code != 200 {
				t.Fatalf("delete: %d %s", r.code, r.raw)
			}
			if r := b.do("POST", "/api/history", map[string]any{"clear": true}, bearer(token["ann"])); r.code != 200 {
				t.Fatalf("clear: %d %s", r.code, r.raw)
			}
			if h := history(a, owner); h[benP] == nil || h[annP] != nil {
				t.Errorf("after ann's delete and clear: ben's %t (want kept), ann's %t (want gone)", h[benP] != nil, h[annP] != nil)
			}
			// (Another test's prompt may be running on the shared ComfyUI for a moment: then it is
			// another's, 403, until it ends.)
			eventually(t, "interrupt with nothing of hers running is a no-op", func() bool {
				r := a.do("POST", "/api/interrupt", map[string]any{}, bearer(token["ann"]))
				if r.code != 200 && r.body["code"] != "NOT_YOUR_PROMPT" {
					t.Fatalf("interrupt: %d %s", r.code, r.raw)
				}
				return r.code == 200
			})
			if r := a.do("POST", "/api/interrupt", map[string]any{"prompt_id": benP}, bearer(token["ann"])); r.code != 403 {
				t.Errorf("ann interrupts ben's prompt: %d %s", r.code, r.raw)
			}
			if r := a.do("POST", "/api/free", map[string]any{"unload_models": true}, bearer(token["ann"])); r.code != 403 {
				t.Errorf("ann frees everyone's memory: %d %s", r.code, r.raw)
			}

			// The same look with isolation off sees ben's prompt: the checks above can fail.
			off := startWith(t, db, up, authserver.Options{DisableIsolation: true})
			if h := history(off, token["ben"]); h[benP] == nil {
				t.Fatal("ben's prompt is not in ComfyUI's history at all")
			}
			annAgain := queue(off, "ann")
			eventually(t, "ann's second prompt ran", func() bool { return history(off, owner)[annAgain] != nil })
			if h := history(off, token["ben"]); h[annAgain] == nil {
				t.Error("with isolation off, ben does not see ann's prompt: the isolation checks prove nothing")
			}
		})
	}
}

// ComfyUI sends a prompt's progress and results to the socket whose clientId the prompt names
// and trusts the id a browser picks: through the proxy a user's ids carry that user's prefix,
// so taking another's id (or leaving it out) reaches no one else's socket. GET /users names
// the caller only and POST /users is for nobody.
func TestSocketsAndUsersRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	for _, isolated := range []bool{true, false} {
		t.Run(fmt.Sprintf("isolation-%t", isolated), func(t *testing.T) {
			db := testenv.Open(t, store.SQLite)
			e := startWith(t, db, func(c *config.Config) { c.UpstreamURL = comfy }, authserver.Options{DisableIsolation: !isolated})
			owner := e.bootstrap()
			suffix := fmt.Sprint(time.Now().UnixNano() % 1e9)
			tok := map[string]string{}
			for _, n := range []string{"cam", "dee"} {
				e.do("POST", "/mss-login/api/users", map[string]string{"username": n + suffix, "password": "Ws-pass-1!", "role": "user"}, bearer(owner))
				tok[n] = e.login(n+suffix, "Ws-pass-1!", "192.0.2.242")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// listen opens a socket and collects what it receives.
			listen := func(who, clientID string) (sid string, msgs <-chan string) {
				c, _, err := websocket.Dial(ctx, strings.Replace(e.url, "http", "ws", 1)+"/ws?clientId="+clientID+"&token="+tok[who], nil)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.CloseNow() })
				_, first, err := c.Read(ctx)
				var st struct {
					Data struct{ SID string } `json:"data"`
				}
				if err != nil || json.Unmarshal(first, &st) != nil {
					t.Fatalf("%s's first message: %s %v", who, first, err)
				}
				ch := make(chan string, 1000)
				go func() {
					for {
						_, m, err := c.Read(ctx)
						if err != nil {
							close(ch)
							return
						}
						ch <- string(m)
					}
				}()
				return st.Data.SID, ch
			}
			// dee is connected under an id first; cam then connects with the same id (ComfyUI gives
			// an id to the socket that connected last).
			deeSID, deeMsgs := listen("dee", "shared-tab")
			_, camMsgs := listen("cam", "shared-tab")
			run := func(body map[string]any) string {
				body["prompt"] = map[string]any{
					"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
					"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "ws"}},
				}
				r := e.do("POST", "/api/prompt", body, bearer(tok["dee"]))
				if r.code != 200 {
					t.Fatalf("dee queues: %d %s", r.code, r.raw)
				}
				return r.body["prompt_id"].(string)
			}
			heard := func(ch <-chan string, id string, wait time.Duration) bool {
				deadline := time.After(wait)
				for {
					select {
					case m, ok := <-ch:
						if !ok {
							return false
						}
						if strings.Contains(m, id) && strings.Contains(m, "execution_success") {
							return true
						}
					case <-deadline:
						return false
					}
				}
			}
			p1 := run(map[string]any{"client_id": "shared-tab"})
			if !isolated {
				// Without isolation the same look sees the takeover: cam hears dee's prompt.
				if !heard(camMsgs, p1, 20*time.Second) {
					t.Fatal("with isolation off cam's socket did not take over dee's id: the checks below prove nothing")
				}
				return
			}
			if !heard(deeMsgs, p1, 20*time.Second) {
				t.Fatal("dee's socket did not hear her prompt run")
			}
			p2 := run(map[string]any{}) // no client id: ComfyUI would tell whichever socket it finds, or all
			if heard(camMsgs, p1, time.Second) || heard(camMsgs, p2, 3*time.Second) {
				t.Fatal("cam's socket heard dee's prompt")
			}
			if !strings.HasPrefix(deeSID, "mssl") {
				t.Errorf("dee's socket id %q carries no user prefix", deeSID)
			}
			if r := e.do("GET", "/api/users", nil, bearer(tok["cam"])); r.code != 200 || strings.Contains(r.raw, "dee"+suffix) ||
				r.body["users"] != nil || r.body["migrated"] != true {
				t.Errorf("GET /api/users as cam: %d %s, want no account list", r.code, r.raw)
			}
			if r := e.do("POST", "/api/users", map[string]string{"username": "x"}, bearer(owner)); r.code != 403 {
				t.Errorf("POST /api/users: %d", r.code)
			}
		})
	}
}

func pngBytes(t *testing.T) []byte {
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewRGBA(image.Rect(0, 0, 2, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}
