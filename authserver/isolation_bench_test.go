package authserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// BenchmarkIsolation measures what keeping users apart costs, against the same request through
// a server with isolation off in the same run: GET /history of 1,000 entries from 10 users
// (filtered to one user's 100), GET /queue of 200 entries, and POST /prompt (the owner record;
// SQLite).
func BenchmarkIsolation(b *testing.B) {
	db := testenv.Open(b, store.SQLite)
	// A ComfyUI answering a fixed history and queue, and any prompt.
	var history, queue []byte
	mux := http.NewServeMux()
	mux.HandleFunc("/api/history", func(w http.ResponseWriter, _ *http.Request) { w.Write(history) })
	mux.HandleFunc("/api/queue", func(w http.ResponseWriter, _ *http.Request) { w.Write(queue) })
	mux.HandleFunc("/api/prompt", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"prompt_id":"x","number":1}`)) })
	mux.HandleFunc("/api/users", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`{"storage":"server","users":{}}`)) })
	mux.HandleFunc("/api/models", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`["checkpoints"]`)) })
	mux.HandleFunc("/api/models/checkpoints", func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte(`[]`)) })
	up := httptest.NewServer(mux)
	defer up.Close()
	edit := func(c *config.Config) { c.UpstreamURL = up.URL }
	on := startWith(b, db, edit, authserver.Options{})
	off := startWith(b, db, edit, authserver.Options{DisableIsolation: true})
	owner := on.bootstrap()
	var tokens []string
	for i := range 10 {
		name := fmt.Sprintf("bench%d", i)
		if r := on.do("POST", "/mss-login/api/users", map[string]string{"username": name, "password": "Bench-pass-1!", "role": "user"}, bearer(owner)); r.code != 201 {
			b.Fatal(r.raw)
		}
		tokens = append(tokens, on.login(name, "Bench-pass-1!", fmt.Sprintf("192.0.2.%d", 100+i)))
	}
	users, _ := db.Users(context.Background())
	ids := map[string]string{}
	for _, u := range users {
		ids[u.Username] = u.ID
	}
	h := map[string]any{}
	var running, pending []any
	for i := range 1000 {
		id := fmt.Sprintf("prompt-%04d", i)
		if err := db.ClaimPrompt(context.Background(), id, ids[fmt.Sprintf("bench%d", i%10)], time.Now()); err != nil {
			b.Fatal(err)
		}
		entry := map[string]any{"prompt": []any{i, id, map[string]any{"1": map[string]any{"class_type": "EmptyImage",
			"inputs": map[string]any{"width": 512, "height": 512}}}, map[string]any{"client_id": "c"}, []string{"2"}},
			"outputs": map[string]any{"2": map[string]any{"images": []any{map[string]any{"filename": id + ".png", "subfolder": "x", "type": "output"}}}},
			"status":  map[string]any{"status_str": "success", "completed": true, "messages": []any{}}}
		h[id] = entry
		if i < 200 {
			pending = append(pending, entry["prompt"])
		}
	}
	running = pending[:1]
	history, _ = json.Marshal(h)
	queue, _ = json.Marshal(map[string]any{"queue_running": running, "queue_pending": pending[1:]})
	// Through the isolating server once, so its owner cache is as warm as in use.
	on.do("GET", "/api/history", nil, bearer(tokens[3]))
	on.do("GET", "/api/queue", nil, bearer(tokens[3]))

	prompt := map[string]any{"client_id": "tab", "prompt": map[string]any{
		"1": map[string]any{"class_type": "EmptyImage", "inputs": map[string]any{"width": 8, "height": 8, "batch_size": 1, "color": 0}},
		"2": map[string]any{"class_type": "SaveImage", "inputs": map[string]any{"images": []any{"1", 0}, "filename_prefix": "b"}},
	}}
	for _, c := range []struct {
		group, name string
		e           *env
		method      string
		path        string
		body        any
	}{
		{"history-1000", "baseline-unfiltered", off, "GET", "/api/history", nil},
		{"history-1000", "filtered-to-one-user", on, "GET", "/api/history", nil},
		{"queue-200", "baseline-unfiltered", off, "GET", "/api/queue", nil},
		{"queue-200", "filtered-to-one-user", on, "GET", "/api/queue", nil},
		{"prompt", "baseline-no-owner-record", off, "POST", "/api/prompt", prompt},
		{"prompt", "owner-recorded", on, "POST", "/api/prompt", prompt},
	} {
		b.Run(c.group+"/"+c.name, func(b *testing.B) {
			for b.Loop() {
				r := c.e.do(c.method, c.path, c.body, bearer(tokens[3]))
				if r.code != 200 || (c.e == on && strings.Contains(r.raw, "prompt-0004")) {
					b.Fatalf("%d %.100s", r.code, r.raw)
				}
			}
		})
	}
}
