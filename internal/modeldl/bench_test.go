package modeldl_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/modeldl"
	"github.com/mss-login/mss-login/internal/testenv"
)

// streamSource serves size bytes (a random 1 MiB block over and over) without holding them.
func streamSource(b *testing.B, size int64) *httptest.Server {
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Accept-Ranges", "bytes")
		for sent := int64(0); sent < size; {
			n := min(int64(len(block)), size-sent)
			if _, err := w.Write(block[:n]); err != nil {
				return
			}
			sent += n
		}
	}))
	b.Cleanup(srv.Close)
	return srv
}

// BenchmarkDownload is issue 19's figure: a 2 GiB download from loopback into versitygw by
// modeldl against `rclone copyurl` (its defaults) in the same run, with the Go heap's peak
// during the transfer. MSS_BENCH_DOWNLOAD_MIB changes the size.
func BenchmarkDownload(b *testing.B) {
	size := int64(2048) << 20
	if v, err := strconv.ParseInt(os.Getenv("MSS_BENCH_DOWNLOAD_MIB"), 10, 64); err == nil && v > 0 {
		size = v << 20
	}
	srv := streamSource(b, size)
	bucket := testenv.S3Bucket(b, "bench-dl", nil)
	rclone, err := exec.LookPath("rclone")
	if err != nil {
		b.Skip("rclone is not installed (hack/packages.sh installs it)")
	}
	b.Run("baseline-rclone-copyurl", func(b *testing.B) {
		remote := fmt.Sprintf(":s3,provider=Other,env_auth=false,access_key_id=%s,secret_access_key=%s,endpoint='%s',force_path_style=true:%s/rclone-%d.safetensors",
			bucket.AccessKey, bucket.SecretKey, bucket.Endpoint, bucket.Bucket, time.Now().UnixNano())
		b.SetBytes(size)
		for i := 0; i < b.N; i++ {
			cmd := exec.Command(rclone, "copyurl", srv.URL+"/m.safetensors", strings.Replace(remote, "rclone-", fmt.Sprintf("rclone-%d-", i), 1))
			// AWS_CA_BUNDLE (set on some machines for their proxy) makes rclone's S3 backend fail
			// on a plain-http endpoint.
			cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "AWS_CA_BUNDLE=") }), "RCLONE_CONFIG=/dev/null")
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("rclone copyurl: %v\n%s", err, out)
			}
		}
	})
	b.Run("modeldl", func(b *testing.B) {
		b.SetBytes(size)
		var peak atomic.Uint64
		stop := make(chan struct{})
		go func() {
			var m runtime.MemStats
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
				}
			}
		}()
		for i := 0; i < b.N; i++ {
			dst := &modeldl.S3Dest{Client: bucket.Client, Bucket: bucket.Bucket, Key: fmt.Sprintf("modeldl-%d-%d.safetensors", i, time.Now().UnixNano())}
			if err := modeldl.Run(context.Background(), srv.Client(), modeldl.Source{URL: srv.URL + "/m.safetensors"}, dst, &modeldl.State{}, nil); err != nil {
				b.Fatal(err)
			}
		}
		close(stop)
		b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	})
}
