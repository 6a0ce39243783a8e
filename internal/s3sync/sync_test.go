package s3sync

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func mustSync(t *testing.T, s *Syncer) Result {
	t.Helper()
	res, err := s.SyncOnce(context.Background())
	if err != nil {
		t.Fatalf("sync: %v", err)
	}
	return res
}

func newSyncer(t *testing.T, o Options) *Syncer {
	t.Helper()
	s, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// First sync fills the directory exactly; a second one downloads nothing; changed, added and
// deleted objects are applied; files the engine did not write are left alone.
func TestSyncIncremental(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	srv.put("models/checkpoints/base.safetensors", []byte("checkpoint v1"))
	srv.put("models/loras/style/a.safetensors", []byte("lora a"))
	srv.put("models/loras/b.safetensors", []byte("lora b"))
	srv.put("models/unlisted/x.bin", []byte("not a synced folder"))
	srv.put("input/in.png", []byte("input, not asked for"))
	srv.put("users/alice/workflows/w.json", []byte("{}"))
	o := srv.options(dir)
	o.ModelFolders = []string{"checkpoints", "loras", "vae"}
	o.MountPath = "/workspace/s3"
	s := newSyncer(t, o)

	res := mustSync(t, s)
	if res.Downloaded != 3 || res.Deleted != 0 || !s.Ready() {
		t.Fatalf("first sync: %+v ready=%v", res, s.Ready())
	}
	want := map[string]string{
		"models/checkpoints/base.safetensors": "checkpoint v1",
		"models/loras/style/a.safetensors":    "lora a",
		"models/loras/b.safetensors":          "lora b",
		ModelPathsFile:                        modelPathsYAML("/workspace/s3", o.ModelFolders),
	}
	if got := tree(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the first sync the directory holds %v, want %v", keys(got), keys(want))
	}
	if fi, err := os.Stat(filepath.Join(dir, "models", "vae")); err != nil || !fi.IsDir() {
		t.Fatalf("empty model folder vae not created: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, metaDir, readyMarker)); err != nil {
		t.Fatalf("ready marker: %v", err)
	}

	res = mustSync(t, s)
	if res.Downloaded != 0 || res.Deleted != 0 || res.Unchanged != 3 {
		t.Fatalf("no-change re-sync: %+v", res)
	}

	// A new engine on the same directory (a restarted sidecar with a PVC) trusts its state file.
	res = mustSync(t, newSyncer(t, o))
	if res.Downloaded != 0 || res.Unchanged != 3 {
		t.Fatalf("re-sync after restart: %+v", res)
	}

	mine := filepath.Join(dir, "models", "loras", "mine.safetensors")
	if err := os.WriteFile(mine, []byte("put here by hand"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv.put("models/checkpoints/base.safetensors", []byte("checkpoint v2, longer"))
	srv.put("models/vae/new.safetensors", []byte("vae"))
	srv.del("models/loras/style/a.safetensors")
	res = mustSync(t, s)
	if res.Downloaded != 2 || res.Deleted != 1 || res.Unchanged != 1 {
		t.Fatalf("incremental sync: %+v", res)
	}
	want["models/checkpoints/base.safetensors"] = "checkpoint v2, longer"
	want["models/vae/new.safetensors"] = "vae"
	want["models/loras/mine.safetensors"] = "put here by hand"
	delete(want, "models/loras/style/a.safetensors")
	if got := tree(t, dir); !reflect.DeepEqual(got, want) {
		t.Fatalf("after the incremental sync the directory holds %v, want %v", keys(got), keys(want))
	}
	if _, err := os.Stat(filepath.Join(dir, "models", "loras", "style")); !os.IsNotExist(err) {
		t.Fatalf("the emptied folder models/loras/style should be gone: %v", err)
	}

	// Same size, new content: the ETag tells.
	srv.put("models/loras/b.safetensors", []byte("lora B"))
	if res = mustSync(t, s); res.Downloaded != 1 {
		t.Fatalf("same-size change: %+v", res)
	}
	// A file damaged on disk is put back.
	if err := os.WriteFile(filepath.Join(dir, "models", "loras", "b.safetensors"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if res = mustSync(t, s); res.Downloaded != 1 {
		t.Fatalf("damaged file: %+v", res)
	}
	if got := tree(t, dir)["models/loras/b.safetensors"]; got != "lora B" {
		t.Fatalf("b.safetensors = %q", got)
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// Input is synced when asked; output files are uploaded and never deleted in the bucket.
func TestSyncInputOutput(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	srv.put("input/photo.png", []byte("png"))
	o := srv.options(dir)
	o.Input, o.Output = true, true
	s := newSyncer(t, o)
	mustSync(t, s)
	if got := tree(t, dir)["input/photo.png"]; got != "png" {
		t.Fatalf("input/photo.png = %q", got)
	}
	out := filepath.Join(dir, "output", "ComfyUI_0001.png")
	if err := os.WriteFile(out, []byte("result"), 0o644); err != nil {
		t.Fatal(err)
	}
	past := time.Now().Add(-time.Minute)
	_ = os.Chtimes(out, past, past)
	fresh := filepath.Join(dir, "output", "fresh.png")
	if err := os.WriteFile(fresh, []byte("being written"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Modified "just now" however slow this machine is: it must wait until it settles.
	soon := time.Now().Add(time.Hour)
	_ = os.Chtimes(fresh, soon, soon)
	res := mustSync(t, s)
	if res.Uploaded != 1 {
		t.Fatalf("uploaded %d, want 1 (the fresh file waits until it settles)", res.Uploaded)
	}
	if b, err := srv.get("output/ComfyUI_0001.png"); err != nil || string(b) != "result" {
		t.Fatalf("uploaded output: %q, %v", b, err)
	}
	if res = mustSync(t, s); res.Uploaded != 0 {
		t.Fatalf("re-sync uploaded %d again", res.Uploaded)
	}
}

// An object above the threshold is fetched in ranged parts and arrives byte for byte.
func TestSyncLargeObjectRanged(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	big := randomBytes(3<<20 + 17)
	srv.put("models/checkpoints/big.safetensors", big)
	net := &faultyNet{}
	o := srv.options(dir)
	o.HTTPClient = net
	o.MultipartThreshold, o.PartSize = 1<<20, 256<<10
	s := newSyncer(t, o)
	if res := mustSync(t, s); res.Downloaded != 1 || res.DownloadedBytes != int64(len(big)) {
		t.Fatalf("sync: %+v", res)
	}
	if got := tree(t, dir)["models/checkpoints/big.safetensors"]; got != string(big) {
		t.Fatalf("big object differs (%d bytes, want %d)", len(got), len(big))
	}
	if n := net.ranged.Load(); n != 13 {
		t.Fatalf("%d ranged GETs, want 13 parts of 256 KiB", n)
	}
}

// A download cut off half-way leaves no partial file: the old version stays in place (or no
// file at all for a new object), nothing is left in the temporary folder, and the next sync
// completes it.
func TestSyncInterruptedDownload(t *testing.T) {
	for _, ranged := range []bool{false, true} {
		name := map[bool]string{false: "whole", true: "ranged"}[ranged]
		t.Run(name, func(t *testing.T) {
			srv := newServer(t)
			dir := t.TempDir()
			v1, v2 := randomBytes(600<<10), randomBytes(700<<10)
			srv.put("models/checkpoints/model.safetensors", v1)
			o := srv.options(dir)
			if ranged {
				o.MultipartThreshold, o.PartSize = 256<<10, 128<<10
			}
			mustSync(t, newSyncer(t, o))

			srv.put("models/checkpoints/model.safetensors", v2)
			srv.put("models/loras/new.safetensors", randomBytes(300<<10))
			cut := o
			cut.HTTPClient = &faultyNet{cutSuffix: ".safetensors", cutAfter: 64 << 10}
			_, err := newSyncer(t, cut).SyncOnce(context.Background())
			if err == nil || !strings.Contains(err.Error(), "connection reset") {
				t.Fatalf("interrupted sync: err = %v", err)
			}
			got := tree(t, dir)
			if got["models/checkpoints/model.safetensors"] != string(v1) {
				t.Fatal("the old model was replaced by a partial download")
			}
			if _, ok := got["models/loras/new.safetensors"]; ok {
				t.Fatal("a partial new model is visible")
			}
			if left := tempFiles(t, dir); len(left) != 0 {
				t.Fatalf("temporary files left: %v", left)
			}
			res := mustSync(t, newSyncer(t, o))
			if res.Downloaded != 2 || tree(t, dir)["models/checkpoints/model.safetensors"] != string(v2) {
				t.Fatalf("sync after the interruption: %+v", res)
			}
		})
	}
}

// A cancelled sync (SIGTERM) stops at once and leaves no temporary file behind.
func TestSyncCancelLeavesNoPartialFile(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	srv.put("models/checkpoints/a.safetensors", randomBytes(2<<20))
	o := srv.options(dir)
	ctx, cancel := context.WithCancel(context.Background())
	o.HTTPClient = &cancelNet{cancel: cancel}
	_, err := newSyncer(t, o).SyncOnce(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if _, ok := tree(t, dir)["models/checkpoints/a.safetensors"]; ok {
		t.Fatal("a partial file is visible")
	}
	if left := tempFiles(t, dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// cancelNet cancels the context (SIGTERM) once the first 64 KiB of an object's body have
// been read; the body then fails as a cancelled request's does.
type cancelNet struct{ cancel func() }

func (c *cancelNet) Do(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultClient.Do(r)
	if err == nil && r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, ".safetensors") {
		resp.Body = &cancelBody{cutBody: cutBody{ReadCloser: resp.Body, left: 64 << 10}, cancel: c.cancel}
	}
	return resp, err
}

type cancelBody struct {
	cutBody
	cancel func()
}

func (b *cancelBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		b.cancel()
		return 0, context.Canceled
	}
	return b.cutBody.Read(p)
}

// A wrong secret is reported with the S3 error code and without the secret; the files of the
// last good sync stay.
func TestSyncWrongSecret(t *testing.T) {
	srv := newServer(t)
	dir := t.TempDir()
	srv.put("models/vae/v.safetensors", []byte("vae"))
	o := srv.options(dir)
	mustSync(t, newSyncer(t, o))

	bad := o
	bad.SecretAccessKey = "wrong-secret-value-1234"
	_, err := newSyncer(t, bad).SyncOnce(context.Background())
	if err == nil {
		t.Fatal("sync with a wrong secret succeeded")
	}
	if ErrorCode(err) != "SignatureDoesNotMatch" || !strings.Contains(err.Error(), "SignatureDoesNotMatch") || !permanent(err) {
		t.Fatalf("error %q (code %q) does not name SignatureDoesNotMatch", err, ErrorCode(err))
	}
	for _, secret := range []string{bad.SecretAccessKey, o.SecretAccessKey} {
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("the error shows a secret: %v", err)
		}
	}
	if tree(t, dir)["models/vae/v.safetensors"] != "vae" {
		t.Fatal("a failed sync changed the files")
	}
	if err := Check(context.Background(), bad); ErrorCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("Check: %v", err)
	}
}

func TestSyncMissingBucket(t *testing.T) {
	srv := newServer(t)
	o := srv.options(t.TempDir())
	o.Bucket = "no-such-bucket-" + randomHex(4)
	_, err := newSyncer(t, o).SyncOnce(context.Background())
	if ErrorCode(err) != "NoSuchBucket" || !strings.Contains(err.Error(), "bucket does not exist") {
		t.Fatalf("err = %v (code %q), want NoSuchBucket", err, ErrorCode(err))
	}
	if err := Check(context.Background(), o); ErrorCode(err) != "NoSuchBucket" {
		t.Fatalf("Check: %v", err)
	}
	if err := Check(context.Background(), srv.options(t.TempDir())); err != nil {
		t.Fatalf("Check on a good bucket: %v", err)
	}
}

// Run serves readiness only after the first complete sync and stops on cancel.
func TestRunReadinessAndStop(t *testing.T) {
	srv := newServer(t)
	srv.put("models/loras/a.safetensors", []byte("a"))
	o := srv.options(t.TempDir())
	o.Interval = 50 * time.Millisecond
	s := newSyncer(t, o)
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	status := func(p string) int {
		r, err := http.Get(hs.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, r.Body)
		r.Body.Close()
		return r.StatusCode
	}
	if c := status("/readyz"); c != http.StatusServiceUnavailable {
		t.Fatalf("readyz before the first sync: %d", c)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for status("/readyz") != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("not ready after 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := http.Get(hs.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(body), "mss_login_s3sync_downloaded_objects_total 1") {
		t.Fatalf("metrics:\n%s", body)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not stop after cancel")
	}
}
