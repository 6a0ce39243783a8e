// Package comfystub is a stand-in for ComfyUI in tests and benchmarks (ComfyUI itself cannot
// run here): its real routes, bare and under /api/, its /ws progress channel, and the
// comfy-user header of --multi-user mode. It records what reached it, so tests can assert that
// credentials and spoofed identity headers never do.
package comfystub

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// Seen is what the stub recorded about one request.
type Seen struct {
	Method, Path, RawPath, Query string
	ComfyUser                    string
	Authorization                string
	Cookie                       string
	Header                       http.Header
	Body                         string // the first 64 KiB
}

// Stub is the fake ComfyUI.
type Stub struct {
	mu    sync.Mutex
	seen  []Seen // the last requests (at most about 1,000)
	count int
	// Body is served for GET /view (streamed), default 1 KiB.
	Body []byte
	// MultiUser mimics --multi-user: /users lists and creates users ("<name>_<n>" ids), and
	// /userdata and /settings answer 500 for a comfy-user id it does not know.
	MultiUser bool
	models    map[string][]string // the model files of each folder (SetModels)
	users     map[string]string   // id → name
}

// New returns a stub with a 1 KiB /view body.
func New() *Stub { return &Stub{Body: []byte(strings.Repeat("x", 1024))} }

// Last returns the most recent request the stub saw, leaving out the model listings an auth
// server reads in the background (GET /api/models…, at start and every 30 s), which would
// otherwise race with the request a test just sent.
func (s *Stub) Last() Seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.seen) - 1; i >= 0; i-- {
		if !strings.HasPrefix(s.seen[i].Path, "/api/models") {
			return s.seen[i]
		}
	}
	return Seen{}
}

// Count returns how many requests reached the stub (all of them, not only those still kept),
// leaving out the auth server's background model listings as Last does.
func (s *Stub) Count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count
}

// SetModels sets the model files of each folder (GET /models/{folder}, /embeddings,
// CheckpointLoaderSimple's options in /object_info).
func (s *Stub) SetModels(m map[string][]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.models = m
}

func (s *Stub) modelsOf(folder string) ([]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	names, ok := s.models[folder]
	return names, ok
}

func (s *Stub) record(r *http.Request) {
	head, _ := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(head), r.Body))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !strings.HasPrefix(r.URL.Path, "/api/models") { // see Last
		s.count++
	}
	if len(s.seen) > 1000 {
		s.seen = s.seen[500:]
	}
	s.seen = append(s.seen, Seen{Method: r.Method, Path: r.URL.Path, RawPath: r.URL.EscapedPath(), Query: r.URL.RawQuery,
		ComfyUser: r.Header.Get("Comfy-User"), Authorization: r.Header.Get("Authorization"), Cookie: r.Header.Get("Cookie"),
		Header: r.Header.Clone(), Body: string(head)})
}

// ServeHTTP answers like ComfyUI's routes, the same bare and under /api/.
func (s *Stub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.record(r)
	route := strings.TrimPrefix(r.URL.Path, "/api")
	if route == "" {
		route = "/"
	}
	switch {
	case route == "/ws":
		s.serveWS(w, r)
	case route == "/":
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, "<!doctype html><title>ComfyUI</title><h1>ComfyUI stand-in</h1>")
	case route == "/view":
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(s.Body)
	case route == "/prompt" && r.Method == http.MethodPost:
		// ComfyUI queues under the prompt_id the body gives, else a new one.
		var body struct {
			PromptID string `json:"prompt_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		writeJSON(w, map[string]any{"prompt_id": cmp.Or(body.PromptID, "p-1"), "number": 1, "node_errors": map[string]any{}})
	case route == "/users":
		s.serveUsers(w, r)
	case route == "/models":
		writeJSON(w, modelFolders)
	case strings.HasPrefix(route, "/models/"):
		names, ok := s.modelsOf(strings.TrimPrefix(route, "/models/"))
		if !ok && !slices.Contains(modelFolders, strings.TrimPrefix(route, "/models/")) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.WriteHeader(http.StatusNotFound) // as ComfyUI answers a folder it does not have
			return
		}
		if names == nil {
			names = []string{}
		}
		writeJSON(w, names)
	case route == "/object_info" || route == "/object_info/CheckpointLoaderSimple":
		// One loader, its options the checkpoints (ComfyUI lists every node class).
		names, _ := s.modelsOf("checkpoints")
		if names == nil {
			names = []string{}
		}
		writeJSON(w, map[string]any{"CheckpointLoaderSimple": map[string]any{
			"input":       map[string]any{"required": map[string]any{"ckpt_name": []any{names, map[string]any{"tooltip": "The name of the checkpoint (model) to load."}}}},
			"input_order": map[string]any{"required": []string{"ckpt_name"}}, "output": []string{"MODEL", "CLIP", "VAE"},
			"output_is_list": []bool{false, false, false}, "output_name": []string{"MODEL", "CLIP", "VAE"}, "name": "CheckpointLoaderSimple",
			"display_name": "Load Checkpoint", "description": "Loads a diffusion model checkpoint.", "python_module": "nodes",
			"category": "loaders", "output_node": false, "output_tooltips": []string{},
		}})
	case route == "/embeddings":
		out := []string{}
		embeddings, _ := s.modelsOf("embeddings")
		for _, n := range embeddings {
			out = append(out, strings.TrimSuffix(n, path.Ext(n)))
		}
		writeJSON(w, out)
	case route == "/queue" && r.Method == http.MethodGet:
		writeJSON(w, map[string]any{"queue_running": []any{}, "queue_pending": []any{}}) // nothing queued
	case route == "/history" && r.Method == http.MethodGet:
		writeJSON(w, map[string]any{})
	case s.MultiUser && (strings.HasPrefix(route, "/userdata") || strings.HasPrefix(route, "/settings")) && !s.knownUser(r.Header.Get("Comfy-User")):
		// As ComfyUI's --multi-user answers a comfy-user it does not know.
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, "401: Unauthorized")
	default:
		writeJSON(w, map[string]any{"route": route, "method": r.Method, "comfy_user": r.Header.Get("Comfy-User")})
	}
}

// modelFolders are ComfyUI v0.8's model folders, as GET /models lists them.
var modelFolders = []string{"checkpoints", "configs", "loras", "vae", "text_encoders", "diffusion_models", "clip_vision",
	"style_models", "embeddings", "diffusers", "vae_approx", "controlnet", "gligen", "upscale_models", "latent_upscale_models",
	"custom_nodes", "hypernetworks", "photomaker", "classifiers", "model_patches", "audio_encoders"}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// serveWS is ComfyUI's progress channel: a status message at once, then one per message
// received (echoing it) and a heartbeat every 100 ms.
func (s *Stub) serveWS(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return
	}
	defer c.CloseNow()
	ctx := r.Context()
	send := func(v any) error {
		b, _ := json.Marshal(v)
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		return c.Write(wctx, websocket.MessageText, b)
	}
	// ComfyUI's sid is the clientId the socket asked for, else a new one.
	sid := r.URL.Query().Get("clientId")
	if sid == "" {
		sid = fmt.Sprintf("%032x", time.Now().UnixNano())
	}
	if send(map[string]any{"type": "status", "data": map[string]any{"sid": sid,
		"status": map[string]any{"exec_info": map[string]any{"queue_remaining": 0}}}}) != nil {
		return
	}
	msgs := make(chan []byte)
	go func() {
		defer close(msgs)
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return
			}
			msgs <- b
		}
	}()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-msgs:
			if !ok {
				return
			}
			if send(map[string]any{"type": "echo", "data": string(b)}) != nil {
				return
			}
		case <-tick.C:
			if send(map[string]any{"type": "crystools.monitor", "data": map[string]any{}}) != nil {
				return
			}
		case <-ctx.Done():
			return
		}
	}
}

// Users returns the --multi-user users the stub knows (id → name).
func (s *Stub) Users() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]string{}
	for k, v := range s.users {
		out[k] = v
	}
	return out
}

func (s *Stub) knownUser(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.users[id]
	return ok
}

func (s *Stub) serveUsers(w http.ResponseWriter, r *http.Request) {
	if !s.MultiUser {
		writeJSON(w, map[string]any{"storage": "server", "migrated": true})
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.users == nil {
		s.users = map[string]string{}
	}
	if r.Method != http.MethodPost {
		writeJSON(w, map[string]any{"storage": "server", "users": s.users})
		return
	}
	var body struct {
		Username string `json:"username"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body.Username == "" {
		http.Error(w, `{"error": "bad request"}`, http.StatusBadRequest)
		return
	}
	for _, name := range s.users {
		if name == body.Username {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]any{"error": "Duplicate username."})
			return
		}
	}
	id := fmt.Sprintf("%s_%d", body.Username, len(s.users)+1)
	s.users[id] = body.Username
	writeJSON(w, id)
}
