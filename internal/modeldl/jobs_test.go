package modeldl_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/modeldl"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// hub is Hugging Face's API and file server in one, slow enough (about 8 MiB/s) that a worker
// can be stopped mid-file.
type hub struct {
	data   []byte
	mu     sync.Mutex
	ranges []string
}

func (h *hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sum := sha256.Sum256(h.data)
	switch r.URL.Path {
	case "/api/models/studio/flux/tree/main":
		_ = json.NewEncoder(w).Encode([]map[string]any{{"type": "file", "path": "flux.safetensors", "size": 135,
			"lfs": map[string]any{"oid": hex.EncodeToString(sum[:]), "size": len(h.data)}}})
	case "/studio/flux/resolve/main/flux.safetensors":
		h.mu.Lock()
		h.ranges = append(h.ranges, r.Header.Get("Range"))
		h.mu.Unlock()
		start := 0
		w.Header().Set("ETag", `"flux-1"`)
		if rg := r.Header.Get("Range"); rg != "" {
			start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
			w.Header().Set("Content-Range", "bytes "+strconv.Itoa(start)+"-"+strconv.Itoa(len(h.data)-1)+"/"+strconv.Itoa(len(h.data)))
			w.Header().Set("Content-Length", strconv.Itoa(len(h.data)-start))
			w.WriteHeader(http.StatusPartialContent)
		} else {
			w.Header().Set("Content-Length", strconv.Itoa(len(h.data)))
		}
		for off := start; off < len(h.data); off += 1 << 20 {
			if _, err := w.Write(h.data[off:min(off+1<<20, len(h.data))]); err != nil {
				return
			}
			w.(http.Flusher).Flush()
			time.Sleep(120 * time.Millisecond)
		}
	default:
		http.NotFound(w, r)
	}
}

// Two workers (replicas) share the jobs of one PostgreSQL database: the first is stopped
// mid-file, the second goes on from its last stored part with a range, and the object is the
// file; the finish is reported once.
func TestWorkersResumeOnAnotherReplica(t *testing.T) {
	db := testenv.Open(t, store.PostgreSQL)
	h := &hub{data: make([]byte, 3*modeldl.PartSize+4321)}
	_, _ = rand.Read(h.data)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b := testenv.S3Bucket(t, "dl-jobs", nil)
	var mu sync.Mutex
	finished := map[string]int{}
	worker := func() *modeldl.Worker {
		return &modeldl.Worker{DB: db, Client: srv.Client(), Bases: modeldl.Bases{HuggingFace: srv.URL}, Poll: 100 * time.Millisecond, Lease: 2 * time.Second,
			Dest: func(_ context.Context, j store.DownloadJob, name string) (modeldl.Dest, error) {
				return &modeldl.S3Dest{Client: b.Client, Bucket: b.Bucket, Key: "studio/models/" + j.Folder + "/" + name}, nil
			},
			Finished: func(_ context.Context, j store.DownloadJob, status, reason, _ string, st modeldl.State) {
				mu.Lock()
				finished[j.ID+" "+status+" "+reason]++
				mu.Unlock()
			}}
	}
	req, _ := json.Marshal(modeldl.Request{Source: modeldl.HuggingFace, Repo: "studio/flux", File: "flux.safetensors"})
	job := &store.DownloadJob{UserID: "u1", Username: "ann", Source: modeldl.HuggingFace, Request: string(req),
		Destination: "S3Mount/studio/models", Folder: "diffusion_models", Filename: "flux.safetensors"}
	if err := db.CreateDownloadJob(context.Background(), job); err != nil {
		t.Fatal(err)
	}
	ctxA, stopA := context.WithCancel(context.Background())
	go worker().Run(ctxA)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if j, _ := db.DownloadJob(context.Background(), job.ID); j.BytesDone >= modeldl.PartSize {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	stopA() // replica A dies mid-file
	done, _ := db.DownloadJob(context.Background(), job.ID)
	if done.BytesDone < modeldl.PartSize || done.BytesDone >= int64(len(h.data)) || done.Status != store.DownloadRunning {
		t.Fatalf("replica A stopped at %d bytes (%s)", done.BytesDone, done.Status)
	}
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	go worker().Run(ctxB)
	deadline = time.Now().Add(60 * time.Second)
	var j store.DownloadJob
	for time.Now().Before(deadline) {
		if j, _ = db.DownloadJob(context.Background(), job.ID); j.Status != store.DownloadRunning {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if j.Status != store.DownloadDone {
		t.Fatalf("the job ended %s: %s", j.Status, j.Error)
	}
	if got := object(t, b, "studio/models/diffusion_models/flux.safetensors"); !bytes.Equal(got, h.data) {
		t.Fatalf("the object is not the file (%d of %d bytes)", len(got), len(h.data))
	}
	h.mu.Lock()
	resumedAt := h.ranges[len(h.ranges)-1]
	h.mu.Unlock()
	if !strings.HasPrefix(resumedAt, "bytes=") || resumedAt == "bytes=0-" {
		t.Errorf("replica B did not resume with a range: %v", h.ranges)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(finished) != 1 || finished[job.ID+" done "] != 1 {
		t.Errorf("finished reports: %v", finished)
	}
}
