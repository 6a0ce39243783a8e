package authserver_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/chromedp/chromedp"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/modeldl"
	"github.com/mss-login/mss-login/internal/modelgrant"
	"github.com/mss-login/mss-login/internal/roles"
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

	// Granted to another user, named in the request (the owner may share models).
	r = a.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "style.safetensors", "folder": "checkpoints", "grant_to": "pat"}, bearer(owner))
	shared := r.body["job"].(map[string]any)["job_id"].(string)
	eventually(t, "the download for pat done", func() bool {
		return a.do("GET", "/mss-login/api/model-download/jobs/"+shared, nil, bearer(owner)).body["job"].(map[string]any)["status"] == "done"
	})
	patRow, _ := db.UserByName(context.Background(), "pat")
	grants, _ = db.Grants(context.Background())
	granted = false
	for _, g := range grants {
		if g.UserID == patRow.ID && g.Grant == (modelgrant.Grant{Folder: "checkpoints", Pattern: "style.safetensors"}) {
			granted = true
		}
	}
	if !granted {
		t.Errorf("the model named for pat is not granted to pat: %+v", grants)
	}
	if r := a.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/lora-pack", "filename": "style.safetensors", "folder": "vae", "grant_to": "nobody_here"}, bearer(owner)); r.code != 400 {
		t.Errorf("grant_to an unknown user: %d %s", r.code, r.raw)
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
	if list := a.do("GET", "/mss-login/api/model-download/jobs", nil, bearer(owner)); len(list.body["jobs"].([]any)) != 4 || strings.Contains(list.raw, "hf_secret_key_123") {
		t.Errorf("the job list: %s", list.raw)
	}
	if strings.Contains(a.logs.String(), "hf_secret_key_123") || strings.Contains(b.logs.String(), "hf_secret_key_123") {
		t.Error("the API key is in a log")
	}
}

// The downloads page in headless Chromium: a key saved, a download queued from the form, its
// row with a progress bar, rate and time left while it runs, then done.
func TestBrowserDownloadsPage(t *testing.T) {
	ctx := browser(t)
	data := make([]byte, 24<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	hub := http.NewServeMux()
	hub.HandleFunc("GET /api/models/studio/big/tree/main", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": "big.safetensors", "size": 135,
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}}})
	})
	hub.HandleFunc("GET /studio/big/resolve/main/big.safetensors", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		for off := 0; off < len(data); off += 1 << 20 {
			if _, err := w.Write(data[off : off+1<<20]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(250 * time.Millisecond) // slow enough to watch
		}
	})
	src := httptest.NewServer(hub)
	t.Cleanup(src.Close)
	models := t.TempDir()
	e := start(t, testenv.Open(t, store.SQLite), func(c *config.Config) {
		c.ExperimentalFeatures = true
		c.ModelDownloads = config.ModelDownloads{Destination: "directory", Directory: models, HuggingFaceURL: src.URL, CivitAIURL: src.URL}
	})
	e.bootstrap()
	if err := chromedp.Do(ctx, chromedp.Navigate(e.url+"/login?next=%2Fmss-login%2Fdownloads"), chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "owner"), chromedp.SendKeys(chromedp.ID("password"), ownerPassword),
		chromedp.Submit(chromedp.ID("password")), chromedp.WaitVisible(chromedp.ID("repo_id"))); err != nil {
		t.Fatal(err)
	}
	text := func() string {
		s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body ? document.body.innerText : ""`))
		return s
	}
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("api_key"), "hf_page_key_456"), chromedp.Submit(chromedp.ID("api_key"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the key saved", func() bool { return strings.Contains(text(), "Hugging Face (set)") })
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("repo_id"), "studio/big"), chromedp.SendKeys(chromedp.ID("filename"), "big.safetensors"),
		chromedp.SetValue(chromedp.ID("folder"), "checkpoints"), chromedp.Submit(chromedp.ID("filename"))); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the job running with a rate and time left", func() bool {
		s := text()
		return strings.Contains(s, "running") && strings.Contains(s, "/s") && strings.Contains(s, "MiB of 24.0 MiB")
	})
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("progress").length`)); n != 1 {
		t.Errorf("%d progress bars", n)
	}
	eventually(t, "the job done (the page reloads itself)", func() bool { return strings.Contains(text(), "done") })
	if got, _ := os.ReadFile(filepath.Join(models, "checkpoints", "big.safetensors")); !bytes.Equal(got, data) {
		t.Errorf("the file is not the source's (%d bytes)", len(got))
	}
	if strings.Contains(text(), "hf_page_key_456") {
		t.Error("the page shows the key")
	}
}

// Into the s3_storage bucket (real versitygw) under <prefix>/models/<folder>/.
func TestModelDownloadIntoS3(t *testing.T) {
	bucket := testenv.S3Bucket(t, "dl-api", nil)
	data := make([]byte, modeldl.PartSize+777)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	hub := http.NewServeMux()
	hub.HandleFunc("GET /api/models/studio/vae/tree/main", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": "ae.safetensors", "size": 135,
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}}})
	})
	hub.HandleFunc("GET /studio/vae/resolve/main/ae.safetensors", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	})
	src := httptest.NewServer(hub)
	t.Cleanup(src.Close)
	e := start(t, testenv.Open(t, store.SQLite), func(c *config.Config) {
		c.ExperimentalFeatures, c.Experimental.S3 = true, true
		c.S3Storage.Enabled, c.S3Storage.EndpointURL, c.S3Storage.BucketName, c.S3Storage.Prefix = true, bucket.Endpoint, bucket.Bucket, "studio"
		c.S3AccessKeyID, c.S3SecretAccessKey = config.Secret(bucket.AccessKey), config.Secret(bucket.SecretKey)
		c.ModelDownloads = config.ModelDownloads{Destination: "s3", HuggingFaceURL: src.URL, CivitAIURL: src.URL}
	})
	owner := e.bootstrap()
	r := e.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/vae", "filename": "ae.safetensors", "folder": "vae"}, bearer(owner))
	if r.code != 202 {
		t.Fatalf("queue: %d %s", r.code, r.raw)
	}
	id := r.body["job"].(map[string]any)["job_id"].(string)
	var job map[string]any
	eventually(t, "the download into S3 done", func() bool {
		job, _ = e.do("GET", "/mss-login/api/model-download/jobs/"+id, nil, bearer(owner)).body["job"].(map[string]any)
		return job["status"] == "done" || job["status"] == "failed"
	})
	if job["status"] != "done" {
		t.Fatalf("the job: %v", job)
	}
	out, err := bucket.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket.Bucket), Key: aws.String("studio/models/vae/ae.safetensors")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if got, _ := io.ReadAll(out.Body); !bytes.Equal(got, data) {
		t.Errorf("the object is not the file (%d bytes)", len(got))
	}
}

// A downloaded model reaches the real ComfyUI's listings, for its user only: the file lands in
// ComfyUI's models directory, the grant is the user's, and the auth server's filter shows it to
// them and not to another user.
func TestModelDownloadRealComfyUI(t *testing.T) {
	comfy := testenv.Require(t, testenv.ComfyUIURL)
	base := testenv.Require(t, testenv.ComfyUIDir)
	name := fmt.Sprintf("dl%d.safetensors", time.Now().UnixNano()%1e9)
	data := make([]byte, 1<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	hub := http.NewServeMux()
	hub.HandleFunc("GET /api/models/studio/loras/tree/main", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": name, "size": 135,
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}}})
	})
	hub.HandleFunc("GET /studio/loras/resolve/main/", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	})
	src := httptest.NewServer(hub)
	t.Cleanup(src.Close)
	t.Cleanup(func() { _ = os.Remove(filepath.Join(base, "models", "loras", name)) })
	db := testenv.Open(t, store.SQLite)
	e := start(t, db, func(c *config.Config) {
		c.UpstreamURL = comfy
		c.ExperimentalFeatures = true
		c.ModelDownloads = config.ModelDownloads{Destination: "directory", Directory: filepath.Join(base, "models"), HuggingFaceURL: src.URL, CivitAIURL: src.URL}
	})
	owner := e.bootstrap()
	ctx := context.Background()
	if err := db.PutRole(ctx, roles.Role{Name: "fetcher", Permissions: map[string]bool{roles.CanAccessAPI: true, roles.CanDownloadModels: true}}, ""); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"lena", "max"} {
		role := map[string]string{"lena": "fetcher", "max": "user"}[u]
		eventually(t, "user "+u, func() bool {
			return e.do("POST", "/mss-login/api/users", map[string]string{"username": u, "password": "Some-pass-123!", "role": role}, bearer(owner)).code == 201
		})
	}
	login := func(u string) string {
		return e.do("POST", "/login", map[string]string{"username": u, "password": "Some-pass-123!"}, from("192.0.2.7"+u[:1])).body["jwt_token"].(string)
	}
	lena, maxTok := login("lena"), login("max")
	r := e.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/loras", "filename": name, "folder": "loras"}, bearer(lena))
	if r.code != 202 {
		t.Fatalf("lena queues: %d %s", r.code, r.raw)
	}
	id := r.body["job"].(map[string]any)["job_id"].(string)
	eventually(t, "lena's download done", func() bool {
		return e.do("GET", "/mss-login/api/model-download/jobs/"+id, nil, bearer(lena)).body["job"].(map[string]any)["status"] == "done"
	})
	eventually(t, "the model in lena's listing of the real ComfyUI", func() bool {
		return strings.Contains(e.do("GET", "/api/models/loras", nil, bearer(lena)).raw, name)
	})
	if strings.Contains(e.do("GET", "/api/models/loras", nil, bearer(maxTok)).raw, name) {
		t.Error("another user sees lena's downloaded model")
	}
}

// Into an S3Mount's bucket, as the manager recorded it (spec.modelDownloads): listed as a
// destination, named by the request, written under the mount's <prefix>/models/<folder>/.
func TestModelDownloadIntoS3Mount(t *testing.T) {
	bucket := testenv.S3Bucket(t, "dl-mount", nil)
	data := make([]byte, 2<<20)
	_, _ = rand.Read(data)
	sum := sha256.Sum256(data)
	hub := http.NewServeMux()
	hub.HandleFunc("GET /api/models/studio/ckpt/tree/main", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": "sd.safetensors", "size": 135,
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(data)}}})
	})
	hub.HandleFunc("GET /studio/ckpt/resolve/main/sd.safetensors", func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "f", time.Time{}, bytes.NewReader(data))
	})
	src := httptest.NewServer(hub)
	t.Cleanup(src.Close)
	db := testenv.Open(t, store.SQLite)
	raw, _ := json.Marshal(store.S3Destination{Endpoint: bucket.Endpoint, Bucket: bucket.Bucket, Prefix: "team-a", PathStyle: true,
		AccessKeyID: bucket.AccessKey, SecretAccessKey: bucket.SecretKey})
	if err := db.SetSecretSetting(context.Background(), store.S3DestinationSetting("studio", "models"), string(raw)); err != nil {
		t.Fatal(err)
	}
	e := start(t, db, func(c *config.Config) {
		c.ExperimentalFeatures = true
		c.ModelDownloads = config.ModelDownloads{Destination: "s3mount", HuggingFaceURL: src.URL, CivitAIURL: src.URL}
	})
	owner := e.bootstrap()
	if r := e.do("GET", "/mss-login/api/model-download/folders", nil, bearer(owner)); !strings.Contains(r.raw, `"S3Mount/studio/models"`) || strings.Contains(r.raw, bucket.SecretKey) {
		t.Fatalf("destinations: %s", r.raw)
	}
	if r := e.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/ckpt", "filename": "sd.safetensors",
		"folder": "checkpoints", "destination": "S3Mount/studio/other"}, bearer(owner)); r.code != 400 {
		t.Errorf("an S3Mount that is no destination: %d %s", r.code, r.raw)
	}
	r := e.do("POST", "/mss-login/api/model-download/download", map[string]any{"source": "huggingface", "repo_id": "studio/ckpt", "filename": "sd.safetensors",
		"folder": "checkpoints", "destination": "S3Mount/studio/models"}, bearer(owner))
	if r.code != 202 {
		t.Fatalf("queue: %d %s", r.code, r.raw)
	}
	id := r.body["job"].(map[string]any)["job_id"].(string)
	var job map[string]any
	eventually(t, "the download into the S3Mount's bucket done", func() bool {
		job, _ = e.do("GET", "/mss-login/api/model-download/jobs/"+id, nil, bearer(owner)).body["job"].(map[string]any)
		return job["status"] == "done" || job["status"] == "failed"
	})
	if job["status"] != "done" {
		t.Fatalf("the job: %v", job)
	}
	out, err := bucket.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket.Bucket), Key: aws.String("team-a/models/checkpoints/sd.safetensors")})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Body.Close()
	if got, _ := io.ReadAll(out.Body); !bytes.Equal(got, data) {
		t.Errorf("the object is not the file (%d bytes)", len(got))
	}
}
