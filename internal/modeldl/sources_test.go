package modeldl_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mss-login/mss-login/internal/modeldl"
)

// The sources' API shapes, served on loopback: Hugging Face's tree listing (LFS oid = sha256)
// and CivitAI's model and version answers (primary file, SHA256 hash).
func fakeSources(t *testing.T) modeldl.Bases {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/models/studio/sdxl-turbo/tree/main/unet", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hf_key" {
			http.Error(w, "gated", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode([]map[string]any{
			{"type": "file", "path": "unet/config.json", "size": 700},
			{"type": "file", "path": "unet/model.safetensors", "size": 135, "lfs": map[string]any{"oid": "ab" + strings.Repeat("1", 62), "size": 5135587864}},
		})
	})
	mux.HandleFunc("GET /api/v1/model-versions/42", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"id": 42, "files": []map[string]any{
			{"name": "style-training.zip", "sizeKB": 10, "downloadUrl": "https://civitai.example/api/download/models/42?type=Training"},
			{"name": "style.safetensors", "sizeKB": 2048.5, "primary": true, "downloadUrl": "https://civitai.example/api/download/models/42",
				"hashes": map[string]any{"SHA256": "CD" + strings.Repeat("2", 62)}},
		}})
	})
	mux.HandleFunc("GET /api/v1/models/7", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"modelVersions": []map[string]any{
			{"id": 9, "files": []map[string]any{{"name": "../evil.safetensors", "downloadUrl": "https://civitai.example/x"}}}}})
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return modeldl.Bases{HuggingFace: srv.URL, CivitAI: srv.URL}
}

func TestResolve(t *testing.T) {
	bases := fakeSources(t)
	ctx := context.Background()
	hf, err := modeldl.Resolve(ctx, http.DefaultClient, bases, modeldl.Request{Source: modeldl.HuggingFace, Repo: "studio/sdxl-turbo", File: "unet/model.safetensors"}, "hf_key")
	if err != nil {
		t.Fatal(err)
	}
	if hf.Name != "model.safetensors" || hf.Size != 5135587864 || hf.SHA256 != "ab"+strings.Repeat("1", 62) ||
		hf.URL != bases.HuggingFace+"/studio/sdxl-turbo/resolve/main/unet/model.safetensors" || hf.Header.Get("Authorization") != "Bearer hf_key" {
		t.Errorf("hugging face: %+v", hf)
	}
	if _, err := modeldl.Resolve(ctx, http.DefaultClient, bases, modeldl.Request{Source: modeldl.HuggingFace, Repo: "studio/sdxl-turbo", File: "unet/model.safetensors"}, ""); err == nil || !strings.Contains(err.Error(), "API key") {
		t.Errorf("a gated repo without a key: %v", err)
	}
	cv, err := modeldl.Resolve(ctx, http.DefaultClient, bases, modeldl.Request{Source: modeldl.CivitAI, VersionID: 42}, "")
	if err != nil || cv.Name != "style.safetensors" || cv.SHA256 != "cd"+strings.Repeat("2", 62) || cv.Size != 2048*1024+512 || !strings.HasSuffix(cv.URL, "/models/42") {
		t.Errorf("civitai: %+v %v", cv, err)
	}
	if _, err := modeldl.Resolve(ctx, http.DefaultClient, bases, modeldl.Request{Source: modeldl.CivitAI, ModelID: 7}, ""); err == nil || !strings.Contains(err.Error(), "not a plain name") {
		t.Errorf("a file name with a path from the source: %v", err)
	}
	for _, r := range []modeldl.Request{
		{Source: "github"},
		{Source: modeldl.HuggingFace, Repo: "../etc", File: "x.safetensors"},
		{Source: modeldl.HuggingFace, Repo: "a/b", File: "../x.safetensors"},
		{Source: modeldl.HuggingFace, Repo: "a/b", File: "x.safetensors", Revision: "../main"},
		{Source: modeldl.HuggingFace, Repo: "a/b", File: "dir/.hidden"},
		{Source: modeldl.CivitAI},
	} {
		if err := r.Validate(); err == nil {
			t.Errorf("%+v accepted", r)
		}
	}
}
