package authserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/authserver"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/roles"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// Model grants against the real ComfyUI, its model folders holding small dummy files (ComfyUI
// lists them by name without loading them), on two replicas: listings, /object_info options,
// prompts, model metadata, embeddings, the S3 rule, a runtime grant through the API, and a
// role's grant that the API cannot remove. With isolation switched off every model shows.
func TestModelGrantsRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	base := testenv.Require(t, testenv.ComfyUIDir)
	ctx := context.Background()
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	g := "grant" + sfx
	files := map[string][]string{
		"checkpoints": {g + "/a.safetensors", g + "/b.safetensors"},
		"loras":       {g + "-l1.safetensors"},
		"embeddings":  {g + "-emb.pt"},
	}
	for folder, names := range files {
		for _, n := range names {
			p := filepath.Join(base, "models", folder, n)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte("not a model"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Remove(p) })
		}
	}
	db := testenv.Open(t, store.SQLite)
	up := func(c *config.Config) { c.UpstreamURL = comfy }
	a, b := start(t, db, up), start(t, db, up)
	owner := a.bootstrap()
	role := "artist" + sfx
	if err := db.PutRole(ctx, roles.Role{Name: role, Permissions: map[string]bool{roles.CanRun: true, roles.CanAccessAPI: true}}, ""); err != nil {
		t.Fatal(err)
	}
	// What a ComfyRole's spec.models becomes: rows the resource owns.
	if err := db.ReplaceOwnedGrants(ctx, "ComfyRole/studio/"+role, role, "", []modelgrant.Grant{{Folder: "checkpoints", Pattern: g + "/a*"}}); err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{}
	for _, n := range []string{"ann", "ben"} {
		eventually(t, "a user of the new role created", func() bool { // once the replica has read the role
			return a.do("POST", "/mss-login/api/users", map[string]string{"username": n + sfx, "password": "Model-pass-1!", "role": role}, bearer(owner)).code == 201
		})
		tok[n] = a.login(n+sfx, "Model-pass-1!", "192.0.2.210")
	}
	tok["admin"] = owner
	// Two more roles: one that sees every model (not S3 ones), one with S3 access and the
	// same grant as the artists.
	for _, r := range []roles.Role{
		{Name: "seer" + sfx, Permissions: map[string]bool{roles.CanAccessAPI: true, roles.CanViewAllComfyUIItems: true}},
		{Name: "s3" + sfx, Permissions: map[string]bool{roles.CanAccessAPI: true, roles.CanRun: true, roles.CanAccessS3Storage: true}},
	} {
		if err := db.PutRole(ctx, r, ""); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.ReplaceOwnedGrants(ctx, "ComfyRole/studio/s3"+sfx, "s3"+sfx, "", []modelgrant.Grant{{Folder: "checkpoints", Pattern: g + "/a*"}}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"seer", "s3"} {
		eventually(t, "a user of the new role created", func() bool {
			return a.do("POST", "/mss-login/api/users", map[string]string{"username": n + sfx, "password": "Model-pass-1!", "role": n + sfx}, bearer(owner)).code == 201
		})
		tok[n] = a.login(n+sfx, "Model-pass-1!", "192.0.2.210")
	}
	list := func(e *env, who, path string) []string {
		t.Helper()
		r := e.do("GET", path, nil, bearer(tok[who]))
		var out []string
		if r.code != 200 || json.Unmarshal([]byte(r.raw), &out) != nil {
			t.Fatalf("%s GET %s: %d %.300s", who, path, r.code, r.raw)
		}
		return out
	}
	mine := func(names []string) []string {
		out := []string{}
		for _, n := range names {
			if strings.Contains(n, g) {
				out = append(out, n)
			}
		}
		slices.Sort(out)
		return out
	}
	options := func(e *env, who string) []string {
		t.Helper()
		r := e.do("GET", "/api/object_info/CheckpointLoaderSimple", nil, bearer(tok[who]))
		var info map[string]struct {
			Input struct {
				Required map[string][]json.RawMessage `json:"required"`
			} `json:"input"`
		}
		if r.code != 200 || json.Unmarshal([]byte(r.raw), &info) != nil {
			t.Fatalf("%s object_info: %d %.300s", who, r.code, r.raw)
		}
		var names []string
		_ = json.Unmarshal(info["CheckpointLoaderSimple"].Input.Required["ckpt_name"][0], &names)
		return mine(names)
	}
	want := func(what string, got []string, w ...string) {
		t.Helper()
		if w == nil {
			w = []string{}
		}
		if !slices.Equal(got, w) {
			t.Errorf("%s: %q, want %q", what, got, w)
		}
	}
	ckA, ckB, lora := g+"/a.safetensors", g+"/b.safetensors", g+"-l1.safetensors"

	// The role's grant: one checkpoint of two, no LoRA; the admin and can_view_all_comfyui_items
	// see all.
	want("the seer's checkpoints", mine(list(a, "seer", "/api/models/checkpoints")), ckA, ckB)
	want("the seer's loader options", options(b, "seer"), ckA, ckB)
	want("ann's checkpoints", mine(list(a, "ann", "/api/models/checkpoints")), ckA)
	want("ann's checkpoints on the other replica, /models without /api", mine(list(b, "ann", "/models/checkpoints")), ckA)
	want("ann's LoRAs", mine(list(a, "ann", "/api/models/loras")))
	want("the admin's checkpoints", mine(list(a, "admin", "/api/models/checkpoints")), ckA, ckB)
	want("ann's loader options", options(a, "ann"), ckA)
	want("the admin's loader options", options(b, "admin"), ckA, ckB)
	if r := a.do("GET", "/api/object_info", nil, bearer(tok["ann"])); r.code != 200 || strings.Contains(r.raw, ckB) || !strings.Contains(r.raw, ckA) {
		t.Errorf("ann's whole /object_info: %d, names b: %t", r.code, strings.Contains(r.raw, ckB))
	}
	want("ann's embeddings", mine(list(a, "ann", "/api/embeddings")))

	// Prompts: an ungranted model is refused before ComfyUI sees it, naming node, input, model.
	prompt := func(e *env, who, ckpt string) resp {
		return e.do("POST", "/api/prompt", map[string]any{"prompt": map[string]any{
			"4": map[string]any{"class_type": "CheckpointLoaderSimple", "inputs": map[string]any{"ckpt_name": ckpt}},
		}}, bearer(tok[who]))
	}
	if r := prompt(b, "ann", ckB); r.code != 403 || r.body["code"] != "MODEL_NOT_ALLOWED" || r.body["node"] != "4" ||
		r.body["input"] != "ckpt_name" || r.body["model"] != ckB {
		t.Errorf("ann's prompt naming b: %d %s", r.code, r.raw)
	}
	// A granted model passes the check; ComfyUI itself then refuses a graph without outputs.
	if r := prompt(a, "ann", ckA); r.code == 403 {
		t.Errorf("ann's prompt naming a: %d %s", r.code, r.raw)
	}
	// Reading an ungranted model's file, however the name is spelled.
	for _, q := range []string{ckB, "x/../" + ckB, "./" + ckB} {
		if r := a.do("GET", "/api/view_metadata/checkpoints?"+url.Values{"filename": {q}}.Encode(), nil, bearer(tok["ann"])); r.code != 403 {
			t.Errorf("ann reads the metadata of %s: %d", q, r.code)
		}
	}
	if r := a.do("GET", "/api/view_metadata/checkpoints?filename="+url.QueryEscape(ckA), nil, bearer(tok["ann"])); r.code == 403 {
		t.Errorf("ann reads the metadata of a: %d", r.code)
	}
	if r := a.do("GET", "/api/experiment/models/preview/checkpoints/0/"+ckB, nil, bearer(tok["ann"])); r.code != 403 {
		t.Errorf("ann reads the preview of b: %d", r.code)
	}

	// A runtime grant through the API, for ben only, on every replica within a moment.
	if r := a.do("POST", "/mss-login/api/users/ben"+sfx+"/shared-items", map[string]string{"folder": "loras", "pattern": lora}, bearer(owner)); r.code != 201 {
		t.Fatalf("granting ben a LoRA: %d %s", r.code, r.raw)
	}
	if r := a.do("POST", "/mss-login/api/users/ben"+sfx+"/shared-items", map[string]string{"folder": "loras", "pattern": "../x"}, bearer(owner)); r.code != 400 {
		t.Errorf("a bad pattern: %d %s", r.code, r.raw)
	}
	if r := a.do("POST", "/mss-login/api/users/ben"+sfx+"/shared-items", map[string]string{"folder": "loras", "pattern": lora}, bearer(tok["ann"])); r.code != 403 {
		t.Errorf("ann (no can_manage_model_sharing) grants: %d %s", r.code, r.raw)
	}
	eventually(t, "ben's LoRA on the other replica", func() bool { return slices.Equal(mine(list(b, "ben", "/api/models/loras")), []string{lora}) })
	want("ann's LoRAs after ben's grant", mine(list(b, "ann", "/api/models/loras")))
	if r := a.do("GET", "/mss-login/api/users/ben"+sfx+"/shared-items", nil, bearer(owner)); r.code != 200 ||
		!strings.Contains(r.raw, `"source":"ComfyRole studio/`+role+`"`) || !strings.Contains(r.raw, `"matches":1`) || !strings.Contains(r.raw, `"source":"api"`) {
		t.Errorf("ben's shared items: %d %s", r.code, r.raw)
	}
	// The role's grant belongs to the ComfyRole: the API names it and removes nothing.
	if r := a.do("DELETE", "/mss-login/api/users/ben"+sfx+"/shared-items", map[string]string{"folder": "checkpoints", "pattern": g + "/a*"}, bearer(owner)); r.code != 409 ||
		r.body["code"] != "GRANT_OWNED_BY_RESOURCE" || !strings.Contains(r.raw, "ComfyRole studio/"+role) {
		t.Errorf("removing the role's grant through the API: %d %s", r.code, r.raw)
	}
	if r := a.do("DELETE", "/mss-login/api/users/ben"+sfx+"/shared-items", map[string]string{"folder": "loras", "pattern": lora}, bearer(owner)); r.code != 200 {
		t.Errorf("removing ben's runtime grant: %d %s", r.code, r.raw)
	}
	eventually(t, "ben's LoRA gone", func() bool { return len(mine(list(b, "ben", "/api/models/loras"))) == 0 })

	// An embedding granted by pattern shows by its name without extension.
	if err := db.ReplaceOwnedGrants(ctx, "ComfyUser/studio/ann"+sfx, "", userID(t, db, "ann"+sfx), []modelgrant.Grant{{Folder: "embeddings", Pattern: g + "-*"}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "ann's embedding", func() bool { return slices.Equal(mine(list(a, "ann", "/api/embeddings")), []string{g + "-emb"}) })

	// S3 models: hidden without can_access_s3_storage, even when granted; the admin sees them.
	if err := db.SetListedModels(ctx, "S3Mount/studio/bucket"+sfx, []store.ListedModel{{Folder: "checkpoints", Name: ckA}}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the S3 checkpoint hidden from ann", func() bool { return len(mine(list(b, "ann", "/api/models/checkpoints"))) == 0 })
	want("ann's loader options with a in S3", options(b, "ann"))
	if r := prompt(b, "ann", ckA); r.code != 403 || r.body["code"] != "MODEL_NOT_ALLOWED" {
		t.Errorf("ann's prompt naming the S3 checkpoint: %d %s", r.code, r.raw)
	}
	want("the admin's checkpoints with a in S3", mine(list(a, "admin", "/api/models/checkpoints")), ckA, ckB)
	eventually(t, "can_view_all_comfyui_items without S3 access, with a in S3, on the other replica", func() bool {
		return slices.Equal(mine(list(a, "seer", "/api/models/checkpoints")), []string{ckB})
	})
	want("can_access_s3_storage and the grant, with a in S3", mine(list(b, "s3", "/api/models/checkpoints")), ckA)
	if r := prompt(b, "s3", ckA); r.code == 403 {
		t.Errorf("the S3 user's prompt naming the S3 checkpoint: %d %s", r.code, r.raw)
	}
	if err := db.SetListedModels(ctx, "S3Mount/studio/bucket"+sfx, nil); err != nil {
		t.Fatal(err)
	}

	// Switched off, ann sees and uses every model: the checks above can fail.
	off := startWith(t, db, up, authserver.Options{DisableIsolation: true})
	want("ann's checkpoints with isolation off", mine(list(off, "ann", "/api/models/checkpoints")), ckA, ckB)
	want("ann's loader options with isolation off", options(off, "ann"), ckA, ckB)
	if r := prompt(off, "ann", ckB); r.code == 403 {
		t.Errorf("with isolation off ann's prompt naming b is refused: %s", r.raw)
	}
}

func userID(t *testing.T, db *store.Store, name string) string {
	t.Helper()
	u, err := db.UserByName(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}
