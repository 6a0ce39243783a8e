package modeldl_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mss-login/mss-login/internal/modeldl"
	"github.com/mss-login/mss-login/internal/testenv"
)

// source serves one file with ranges, as Hugging Face's and CivitAI's CDNs do; breakAt makes
// the first answer stop after that many bytes (a dropped connection).
type source struct {
	data    []byte
	etag    string
	breakAt atomic.Int64
	mu      sync.Mutex
	ranges  []string
}

func newSource(t *testing.T, size int) (*source, *httptest.Server) {
	s := &source{data: make([]byte, size), etag: `"v1"`}
	_, _ = rand.Read(s.data)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return s, srv
}

func (s *source) sum() string { h := sha256.Sum256(s.data); return hex.EncodeToString(h[:]) }

func (s *source) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.ranges = append(s.ranges, r.Header.Get("Range"))
	s.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer hf_key" {
		http.Error(w, "no key", http.StatusUnauthorized)
		return
	}
	w.Header().Set("ETag", s.etag)
	w.Header().Set("Accept-Ranges", "bytes")
	body, start := s.data, 0
	if rg := r.Header.Get("Range"); rg != "" && (r.Header.Get("If-Range") == "" || r.Header.Get("If-Range") == s.etag) {
		start, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(rg, "bytes="), "-"))
		body = s.data[start:]
		w.Header().Set("Content-Range", "bytes "+strconv.Itoa(start)+"-"+strconv.Itoa(len(s.data)-1)+"/"+strconv.Itoa(len(s.data)))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusPartialContent)
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	if b := s.breakAt.Swap(0); b > 0 {
		_, _ = w.Write(body[:b])
		panic(http.ErrAbortHandler) // the connection drops mid-file
	}
	_, _ = w.Write(body)
}

var key = http.Header{"Authorization": {"Bearer hf_key"}}

func s3dest(t *testing.T, name string) (*modeldl.S3Dest, testenv.S3) {
	b := testenv.S3Bucket(t, "modeldl", nil)
	return &modeldl.S3Dest{Client: b.Client, Bucket: b.Bucket, Key: "studio/models/checkpoints/" + name}, b
}

func object(t *testing.T, b testenv.S3, key string) []byte {
	t.Helper()
	out, err := b.Client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil
	}
	defer out.Body.Close()
	data, _ := io.ReadAll(out.Body)
	return data
}

func uploads(t *testing.T, b testenv.S3) int {
	out, err := b.Client.ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(b.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Uploads)
}

// Into S3: a dropped connection after 2½ parts resumes with a range from the last stored part
// (on a fresh Run, as another replica would), and the object is the file, byte for byte.
func TestS3ResumeAfterDroppedConnection(t *testing.T) {
	src, srv := newSource(t, 3*modeldl.PartSize+12345)
	src.breakAt.Store(2*modeldl.PartSize + modeldl.PartSize/2)
	dst, b := s3dest(t, "model.safetensors")
	var kept modeldl.State
	st := &modeldl.State{}
	err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key, SHA256: src.sum()}, dst, st, func(s modeldl.State) error { kept = s; return nil })
	if err == nil {
		t.Fatal("a dropped connection was not an error")
	}
	if kept.Done != 2*modeldl.PartSize || len(kept.Parts) != 2 || object(t, b, dst.Key) != nil {
		t.Fatalf("after the drop: done %d, %d parts, object visible %v", kept.Done, len(kept.Parts), object(t, b, dst.Key) != nil)
	}
	// The state as a job row would have kept it, on a new Run.
	resumed := kept
	if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key, SHA256: src.sum()}, dst, &resumed, nil); err != nil {
		t.Fatal(err)
	}
	if got := object(t, b, dst.Key); !bytes.Equal(got, src.data) {
		t.Fatalf("the object is not the file (%d of %d bytes)", len(got), len(src.data))
	}
	if last := src.ranges[len(src.ranges)-1]; last != "bytes="+strconv.Itoa(2*modeldl.PartSize)+"-" {
		t.Errorf("the resume asked for %q", last)
	}
	if resumed.SHA256 != src.sum() || uploads(t, b) != 0 {
		t.Errorf("sha %s, %d uploads left open", resumed.SHA256, uploads(t, b))
	}
}

// A wrong checksum leaves no object and no open upload; an existing object is not replaced;
// a source without the key is refused with a clear error.
func TestS3Refusals(t *testing.T) {
	_, srv := newSource(t, modeldl.PartSize+100)
	dst, b := s3dest(t, "wrong.safetensors")
	err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key, SHA256: strings.Repeat("0", 64)}, dst, &modeldl.State{}, nil)
	if !errors.Is(err, modeldl.ErrChecksum) || object(t, b, dst.Key) != nil || uploads(t, b) != 0 {
		t.Fatalf("wrong checksum: %v, object %v, %d uploads", err, object(t, b, dst.Key) != nil, uploads(t, b))
	}
	b.Put(t, "studio/models/checkpoints/taken.safetensors", "someone's model")
	taken := &modeldl.S3Dest{Client: b.Client, Bucket: b.Bucket, Key: "studio/models/checkpoints/taken.safetensors"}
	if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key}, taken, &modeldl.State{}, nil); !errors.Is(err, modeldl.ErrExists) {
		t.Errorf("over an existing object: %v", err)
	}
	if string(object(t, b, taken.Key)) != "someone's model" {
		t.Error("an existing object was replaced")
	}
	err = modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL}, dst, &modeldl.State{}, nil)
	var se *modeldl.StatusError
	if !errors.As(err, &se) || !strings.Contains(err.Error(), "API key") {
		t.Errorf("without the key: %v", err)
	}
	// Cancelled mid-way by the user: nothing left.
	err = modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key}, dst, &modeldl.State{}, func(modeldl.State) error {
		return modeldl.ErrCancelled
	})
	if !errors.Is(err, modeldl.ErrCancelled) || object(t, b, dst.Key) != nil || uploads(t, b) != 0 {
		t.Errorf("cancelled: %v, object %v, %d uploads", err, object(t, b, dst.Key) != nil, uploads(t, b))
	}
	// The process stopping mid-way (its context ends): the upload stays, resumable.
	ctx, stop := context.WithCancel(context.Background())
	st := &modeldl.State{}
	_ = modeldl.Run(ctx, srv.Client(), modeldl.Source{URL: srv.URL, Header: key}, dst, st, func(modeldl.State) error { stop(); return ctx.Err() })
	if st.UploadID == "" || uploads(t, b) != 1 {
		t.Errorf("a stopping process aborted the upload: %+v, %d uploads", st, uploads(t, b))
	}
}

// Into a directory: resumed after a drop, placed only when whole and right; a changed source
// (another ETag) starts over; a wrong checksum leaves no file; names are plain.
func TestDirectory(t *testing.T) {
	src, srv := newSource(t, 2*modeldl.PartSize+7)
	dir := t.TempDir()
	dst := &modeldl.DirDest{Dir: dir, Name: "lora.safetensors", Job: "j1"}
	src.breakAt.Store(modeldl.PartSize + 10)
	st := &modeldl.State{}
	if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key, SHA256: src.sum()}, dst, st, nil); err == nil {
		t.Fatal("no error after a drop")
	}
	if _, err := os.Stat(filepath.Join(dir, "lora.safetensors")); err == nil {
		t.Fatal("a half file is visible under its name")
	}
	// The file changes at the source before the resume: the range is refused, it starts over.
	_, _ = rand.Read(src.data)
	src.etag = `"v2"`
	if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key, SHA256: src.sum()}, dst, st, nil); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(filepath.Join(dir, "lora.safetensors"))
	if !bytes.Equal(got, src.data) {
		t.Fatalf("the file is not the source's (%d bytes)", len(got))
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("left in the folder: %v", entries)
	}
	bad := &modeldl.DirDest{Dir: dir, Name: "bad.safetensors", Job: "j2"}
	if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key, SHA256: strings.Repeat("a", 64)}, bad, &modeldl.State{}, nil); !errors.Is(err, modeldl.ErrChecksum) {
		t.Errorf("wrong checksum: %v", err)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("a wrong download left %v", entries)
	}
	again := &modeldl.DirDest{Dir: dir, Name: "lora.safetensors", Job: "j3"}
	if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL, Header: key}, again, &modeldl.State{}, nil); !errors.Is(err, modeldl.ErrExists) {
		t.Errorf("over an existing file: %v", err)
	}
	for _, name := range []string{"../x.safetensors", "a/b.safetensors", ".hidden", "", "x\x00y", `c:\x`} {
		if modeldl.CheckName(name) == nil {
			t.Errorf("%q accepted as a file name", name)
		}
	}
}
