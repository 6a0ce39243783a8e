package comfystub_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/mss-login/mss-login/internal/comfystub"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The stand-in answers every route it imitates as the real ComfyUI (v0.8.0, --multi-user) does:
// the same status, the same content type and the same JSON members.
func TestStubMatchesRealComfyUI(t *testing.T) {
	real := testenv.Require(t, testenv.ComfyUIURL)
	stub := httptest.NewServer(&comfystub.Stub{MultiUser: true})
	defer stub.Close()
	name := fmt.Sprintf("cmp%d", time.Now().UnixNano()%1e9)
	graph := `{"prompt_id": "cmp-` + name + `", "prompt": {"1": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
 "2": {"class_type": "SaveImage", "inputs": {"images": ["1", 0], "filename_prefix": "cmp"}}}}`
	type answer struct {
		code        int
		contentType string
		shape       string // the sorted members of a JSON object, or the JSON kind
		body        string
	}
	ask := func(base, method, path, body string, hdr ...string) answer {
		req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		for _, h := range hdr {
			k, v, _ := strings.Cut(h, ": ")
			req.Header.Set(k, v)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		raw, _ := io.ReadAll(res.Body)
		a := answer{code: res.StatusCode, contentType: strings.Split(res.Header.Get("Content-Type"), ";")[0], body: string(raw)}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			switch x := v.(type) {
			case map[string]any:
				keys := []string{}
				for k := range x {
					keys = append(keys, k)
				}
				sort.Strings(keys)
				a.shape = "object " + strings.Join(keys, ",")
			default:
				a.shape = fmt.Sprintf("%T", v)
			}
		}
		return a
	}
	cases := []struct {
		name, method, path, body string
		hdr                      []string
		sameBody                 bool
	}{
		{"page", "GET", "/", "", nil, false},
		{"users", "GET", "/api/users", "", nil, false},
		{"create user", "POST", "/api/users", `{"username": "` + name + `"}`, nil, false},
		{"duplicate user", "POST", "/api/users", `{"username": "` + name + `"}`, nil, true},
		{"unknown user's settings", "GET", "/api/settings", "", []string{"Comfy-User: nobody-" + name}, true},
		{"prompt under its id", "POST", "/api/prompt", graph, nil, false},
		{"queue", "GET", "/api/queue", "", nil, false},
		{"model folders", "GET", "/api/models", "", nil, true},
		{"a model folder", "GET", "/api/models/vae_approx", "", nil, false},
		{"no such model folder", "GET", "/api/models/nope", "", nil, true},
		{"embeddings", "GET", "/api/embeddings", "", nil, false},
		{"a node's info", "GET", "/api/object_info/CheckpointLoaderSimple", "", nil, false},
	}
	for _, c := range cases {
		r, s := ask(real, c.method, c.path, c.body, c.hdr...), ask(stub.URL, c.method, c.path, c.body, c.hdr...)
		if r.code != s.code || r.contentType != s.contentType || r.shape != s.shape || (c.sameBody && !sameContent(r.body, s.body)) {
			t.Errorf("%s: real %d %s %q %.80q; stub %d %s %q %.80q", c.name, r.code, r.contentType, r.shape, r.body,
				s.code, s.contentType, s.shape, s.body)
		}
		if c.name == "prompt under its id" && (!strings.Contains(r.body, "cmp-"+name) || !strings.Contains(s.body, "cmp-"+name)) {
			t.Errorf("the prompt's id: real %s, stub %s", r.body, s.body)
		}
	}
	// The progress socket: the first message is the status, with the client id as its sid.
	for _, base := range []string{real, stub.URL} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, _, err := websocket.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/ws?clientId=tab-"+name, nil)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		_, msg, err := c.Read(ctx)
		c.CloseNow()
		cancel()
		var m struct {
			Type string `json:"type"`
			Data struct {
				SID    string `json:"sid"`
				Status struct {
					ExecInfo struct {
						QueueRemaining *int `json:"queue_remaining"`
					} `json:"exec_info"`
				} `json:"status"`
			} `json:"data"`
		}
		if err != nil || json.Unmarshal(bytes.TrimSpace(msg), &m) != nil || m.Type != "status" || m.Data.SID != "tab-"+name ||
			m.Data.Status.ExecInfo.QueueRemaining == nil {
			t.Errorf("%s /ws first message: %s %v", base, msg, err)
		}
	}
}

// sameContent: equal JSON values, or equal text.
func sameContent(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) == nil && json.Unmarshal([]byte(b), &y) == nil {
		xa, _ := json.Marshal(x)
		ya, _ := json.Marshal(y)
		return bytes.Equal(xa, ya)
	}
	return a == b
}
