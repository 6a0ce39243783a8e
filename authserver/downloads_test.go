package authserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The model download API end to end, into the models directory, from Hugging Face's API shape
// on loopback: off unless configured, the flag, the caller's API key stored (never shown),
// a job queued on one replica and visible on another, run by a worker, the file placed and
// granted to its user, a wrong checksum failing with nothing left, cancel.
func TestModelDownloadAPI(t *testing.T) {
	data := make([]byte, 3<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	hub := http.NewServeMux()
	hub.HandleFunc("GET /api/models/studio/lora-pack/tree/main", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer hf_secret_key_123" {
			http.Error(w, "gated", http.StatusUnauthorized)
			return
		}
		_ = json.NewEncoder(w).Encode([]map[string]any{
			{"type": "file", "path": "style.safetensors", "size": 135, "lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}},
			{"type": "file", "path": "broken.safetensors", "size": 135, "lfs": map[string]any{"oid": strings.Repeat("0", 64), "size": len(data)}},
		})
	})
	hub.HandleFunc("GET /studio/lora-pack/resolve/main/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	})
	src := httptest.NewServer(hub)
	t.Cleanup(src.Close)

	off := start(t, testenv.Open(t, store.SQLite), nil)
	offOwner := off.bootstrap()
	if r := off.do("GET", "/mss-login/api/model-download/sources", nil, bearer(offOwner)); r.code != 404 || !strings.Contains(r.raw, "DOWNLOADS_OFF") {
		t.Errorf("downloads without configuration: %d %s", r.code, r.raw)
	}

	db := testenv.Open(t, store.SQLite)
	models := t.TempDir()
	edit := func(c *config.Config) {
		c.ExperimentalFeatures = true
		c.ModelDownloads = config.ModelDownloads{Destination: "directory", Directory: models, HuggingFaceURL: src.URL, CivitAIURL: src.URL}
	}
	a := start(t, db, edit)
	owner := a.bootstrap()
	b := start(t, db, edit) // a second replica on the same database

	// A plain user has no can_download_models.
	if err := db.CreateUser(context.Background(), &store.User{Username: "pat", Role: "user", PasswordHash: hashOf(t, "Pat-pass-123!")}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	pat := a.do("POST", "/login", map[string]string{"username": "pat", "password": "Pat-pass-123!"}, from("192.0.2.50")).body["jwt_token"].(string)
	if r := a.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "style.safetensors", "folder": "loras"}, bearer(pat)); r.code != 403 {
		t.Errorf("a user without can_download_models: %d %s", r.code, r.raw)
	}

	if r := a.do("PUT", "/mss-login/api/model-download/api-keys", map[string]string{"source": "huggingface", "api_key": "hf_secret_key_123"}, bearer(owner)); r.code != 200 ||
		!strings.Contains(r.raw, `"huggingface":"set"`) || strings.Contains(r.raw, "hf_secret_key_123") {
		t.Fatalf("storing the key: %d %s", r.code, r.raw)
	}
	for _, bad := range []map[string]any{
		{"source": "huggingface", "repo_id": "../etc", "filename": "x.safetensors", "folder": "loras"},
		{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "style.safetensors", "folder": "../../etc"},
		{"source": "github", "folder": "loras"},
	} {
		if r := a.do("POST", "/mss-login/api/model-download/download", bad, bearer(owner)); r.code != 400 {
			t.Errorf("%v: %d %s", bad, r.code, r.raw)
		}
	}
	r := a.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "style.safetensors", "folder": "loras"}, bearer(owner))
	if r.code != 202 {
		t.Fatalf("queue: %d %s", r.code, r.raw)
	}
	id := r.body["job"].(map[string]any)["job_id"].(string)
	var status string
	eventually(t, "the download done", func() bool {
		j := b.do("GET", "/mss-login/api/model-download/jobs/"+id, nil, bearer(owner)) // the other replica shows it
		status, _ = j.body["job"].(map[string]any)["status"].(string)
		return status == "done" || status == "failed"
	})
	if status != "done" {
		t.Fatalf("the job ended %s", status)
	}
	got, _ := os.ReadFile(filepath.Join(models, "loras", "style.safetensors"))
	if !bytes.Equal(got, data) {
		t.Fatalf("the file is not the source's (%d bytes)", len(got))
	}
	ownerRow, _ := db.UserByName(context.Background(), "owner")
	grants, _ := db.Grants(context.Background())
	granted := false
	for _, g := range grants {
		if g.UserID == ownerRow.ID && g.Grant == (modelgrant.Grant{Folder: "loras", Pattern: "style.safetensors"}) {
			granted = true
		}
	}
	if !granted {
		t.Errorf("the downloaded model is not granted to its user: %+v", grants)
	}
	if r := a.do("GET", "/mss-login/api/model-download/jobs/"+id, nil, bearer(pat)); r.code == 200 {
		t.Errorf("another user's job shown: %s", r.raw)
	}

	// A wrong checksum: failed, nothing in the folder.
	r = a.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "broken.safetensors", "folder": "loras"}, bearer(owner))
	bad := r.body["job"].(map[string]any)["job_id"].(string)
	eventually(t, "the broken download failed", func() bool {
		j := a.do("GET", "/mss-login/api/model-download/jobs/"+bad, nil, bearer(owner))
		return j.body["job"].(map[string]any)["status"] == "failed" && strings.Contains(j.raw, "checksum")
	})
	if entries, _ := os.ReadDir(filepath.Join(models, "loras")); len(entries) != 1 {
		t.Errorf("left in the folder: %v", entries)
	}
	// The same file again: refused, the existing one kept.
	r = a.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "style.safetensors", "folder": "loras"}, bearer(owner))
	again := r.body["job"].(map[string]any)["job_id"].(string)
	eventually(t, "a second download of the same name refused", func() bool {
		j := a.do("GET", "/mss-login/api/model-download/jobs/"+again, nil, bearer(owner))
		return j.body["job"].(map[string]any)["status"] == "failed" && strings.Contains(j.raw, "exists")
	})
	if list := a.do("GET", "/mss-login/api/model-download/jobs", nil, bearer(owner)); len(list.body["jobs"].([]any)) != 3 || strings.Contains(list.raw, "hf_secret_key_123") {
		t.Errorf("the job list: %s", list.raw)
	}
	if strings.Contains(a.logs.String(), "hf_secret_key_123") || strings.Contains(b.logs.String(), "hf_secret_key_123") {
		t.Error("the API key is in a log")
	}
}
