package s3sync

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/mss-login/mss-login/internal/testenv"
)

// server is the real S3 server `make test` starts (versitygw), with a fresh bucket.
type server struct {
	t      testing.TB
	opts   Options // endpoint, credentials, bucket; Dir left to the test
	client *s3.Client
}

// newServer gives the test a bucket of its own (testenv.S3Bucket: emptied and removed at
// cleanup), reached through this package's client.
func newServer(t testing.TB) *server {
	t.Helper()
	b := testenv.S3Bucket(t, "s3sync", nil)
	o := Options{
		Endpoint:        b.Endpoint,
		AccessKeyID:     b.AccessKey,
		SecretAccessKey: b.SecretKey,
		PathStyle:       true,
		Bucket:          b.Bucket,
		Prefix:          "studio/",
	}
	o.defaults()
	return &server{t: t, opts: o, client: newClient(&o)}
}

func (s *server) options(dir string) Options {
	o := s.opts
	o.Dir = dir
	o.Logf = s.t.Logf
	return o
}

// put writes an object under the prefix.
func (s *server) put(rel string, body []byte) {
	s.t.Helper()
	_, err := s.client.PutObject(context.Background(), &s3.PutObjectInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.keyPrefix() + rel), Body: bytes.NewReader(body),
	})
	if err != nil {
		s.t.Fatalf("put %s: %v", rel, err)
	}
}

func (s *server) del(rel string) {
	s.t.Helper()
	if _, err := s.client.DeleteObject(context.Background(), &s3.DeleteObjectInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.keyPrefix() + rel),
	}); err != nil {
		s.t.Fatalf("delete %s: %v", rel, err)
	}
}

func (s *server) get(rel string) ([]byte, error) {
	out, err := s.client.GetObject(context.Background(), &s3.GetObjectInput{
		Bucket: aws.String(s.opts.Bucket), Key: aws.String(s.opts.keyPrefix() + rel),
	})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// tree is every regular file under dir (rel path → content), without the engine's folder.
func tree(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == metaDir {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(name)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(dir, name)
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// tempFiles lists what is left in the engine's temporary folder.
func tempFiles(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(filepath.Join(dir, metaDir, tmpDir))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// faultyNet is an HTTP client that counts requests and, for GETs of keys ending in cutSuffix,
// breaks the response body after cutAfter bytes — a connection lost mid-download.
type faultyNet struct {
	base      http.Client
	cutSuffix string
	cutAfter  int64
	requests  atomic.Int64
	ranged    atomic.Int64
}

func (f *faultyNet) Do(r *http.Request) (*http.Response, error) {
	f.requests.Add(1)
	if r.Header.Get("Range") != "" {
		f.ranged.Add(1)
	}
	resp, err := f.base.Do(r)
	if err != nil || r.Method != http.MethodGet || f.cutSuffix == "" || !strings.HasSuffix(r.URL.Path, f.cutSuffix) {
		return resp, err
	}
	resp.Body = &cutBody{ReadCloser: resp.Body, left: f.cutAfter}
	return resp, nil
}

type cutBody struct {
	io.ReadCloser
	left int64
}

func (c *cutBody) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, fmt.Errorf("test: connection reset")
	}
	if int64(len(p)) > c.left {
		p = p[:c.left]
	}
	n, err := c.ReadCloser.Read(p)
	c.left -= int64(n)
	return n, err
}
