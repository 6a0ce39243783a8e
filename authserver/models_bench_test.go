package authserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/authserver/isolation"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// BenchmarkModelGrants measures what model grants cost, against baselines in the same run:
// GET /object_info of about 5 MB (3,000 node classes, 300 of them loaders listing 500
// checkpoints or LoRAs) through a server whose user has grants (the cached filtered answer)
// and through one with isolation off; building the filtered answer for a new grant set
// against one JSON decode + encode of the same body; the prompt check of a 500-node graph.
func BenchmarkModelGrants(b *testing.B) {
	models := map[string][]string{}
	for i := range 500 {
		models["checkpoints"] = append(models["checkpoints"], fmt.Sprintf("sdxl/ckpt-%03d.safetensors", i))
		models["loras"] = append(models["loras"], fmt.Sprintf("style/lora-%03d.safetensors", i))
	}
	info := map[string]any{}
	for i := range 3000 {
		inputs := map[string]any{"seed": []any{"INT", map[string]any{"default": 0, "min": 0, "max": 1 << 53}},
			"text": []any{"STRING", map[string]any{"multiline": true, "tooltip": strings.Repeat("a tooltip that is long ", 18)}}}
		switch {
		case i%20 == 0:
			inputs["ckpt_name"] = []any{models["checkpoints"], map[string]any{"tooltip": "The checkpoint to load."}}
		case i%20 == 1:
			inputs["lora_name"] = []any{"COMBO", map[string]any{"options": models["loras"]}}
		}
		info[fmt.Sprintf("Node%04d", i)] = map[string]any{"input": map[string]any{"required": inputs}, "output": []string{"MODEL"},
			"name": fmt.Sprintf("Node%04d", i), "display_name": "Node", "description": strings.Repeat("d", 200), "category": "loaders",
			"python_module": "custom_nodes.pack", "output_node": false}
	}
	body, _ := json.Marshal(info)
	mux := http.NewServeMux()
	mux.HandleFunc("/api/object_info", func(w http.ResponseWriter, _ *http.Request) { w.Write(body) })
	mux.HandleFunc("/api/models", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode([]string{"checkpoints", "loras"})
	})
	mux.HandleFunc("/api/models/{folder}", func(w http.ResponseWriter, r *http.Request) { json.NewEncoder(w).Encode(models[r.PathValue("folder")]) })
	up := httptest.NewServer(mux)
	defer up.Close()
	db := testenv.Open(b, store.SQLite)
	edit := func(c *config.Config) { c.UpstreamURL = up.URL }
	on := startWith(b, db, edit, authserver.Options{})
	off := startWith(b, db, edit, authserver.Options{DisableIsolation: true})
	owner := on.bootstrap()
	if r := on.do("POST", "/mss-login/api/users", map[string]string{"username": "granted", "password": "Bench-pass-1!", "role": "user"}, bearer(owner)); r.code != 201 {
		b.Fatal(r.raw)
	}
	u, _ := db.UserByName(context.Background(), "granted")
	grants := []modelgrant.Grant{{Folder: "checkpoints", Pattern: "sdxl/ckpt-0*"}, {Folder: "loras", Pattern: "style/lora-1??.safetensors"}}
	if err := db.ReplaceOwnedGrants(context.Background(), "ComfyUser/bench/granted", "", u.ID, grants); err != nil {
		b.Fatal(err)
	}
	tok := on.login("granted", "Bench-pass-1!", "192.0.2.70")
	eventually(&testing.T{}, "", func() bool {
		return !strings.Contains(on.do("GET", "/api/object_info", nil, bearer(tok)).raw, "ckpt-100")
	})
	b.Logf("/object_info: %d bytes", len(body))
	for _, c := range []struct {
		name string
		e    *env
	}{{"object_info-5MB/baseline-unfiltered", off}, {"object_info-5MB/cached-filtered", on}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r := c.e.do("GET", "/api/object_info", nil, bearer(tok))
				if r.code != 200 || (c.e == on && strings.Contains(r.raw, "ckpt-100")) {
					b.Fatalf("%d %.100s", r.code, r.raw)
				}
			}
		})
	}
	// Building anew, as for a grant set not seen before: the rewrite alone, against one decode
	// and encode of the same body.
	set := modelgrant.NewSet(grants)
	byName := map[string]string{}
	for f, names := range models {
		for _, n := range names {
			byName[n] = f
		}
	}
	view := func(n string) (bool, bool) {
		f, ok := byName[n]
		return ok, ok && set.Allows(f, n)
	}
	b.Run("object_info-5MB-new-grant-set/baseline-decode-encode", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			var v any
			if err := json.Unmarshal(body, &v); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("object_info-5MB-new-grant-set/filter", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for b.Loop() {
			if _, err := isolation.FilterObjectInfo(body, isolation.Options{Models: view}); err != nil {
				b.Fatal(err)
			}
		}
	})
	graph := map[string]any{}
	for i := range 500 {
		in := map[string]any{"seed": i, "steps": 20, "model": []any{fmt.Sprint(i + 1), 0}, "text": "a prompt of some length"}
		if i%10 == 0 {
			in["ckpt_name"] = fmt.Sprintf("sdxl/ckpt-%03d.safetensors", i%100)
		}
		graph[fmt.Sprint(i)] = map[string]any{"class_type": "KSampler", "inputs": in}
	}
	raw, _ := json.Marshal(graph)
	b.Run("prompt-check-500-nodes", func(b *testing.B) {
		for b.Loop() {
			if refused, _, err := isolation.PromptModels(raw, view); err != nil || refused != nil {
				b.Fatal(refused, err)
			}
		}
	})
}
