package s3sync

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// putMany uploads n objects of size bytes under models/<folder>/, from a few goroutines.
func (s *server) putMany(n, size int, name func(i int) string) {
	body := randomBytes(size)
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				s.put(name(i), body)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// BenchmarkFirstSync: 200 × 4 MiB into an empty directory, s3sync against `rclone sync` (the
// "baseline-rclone" sub-benchmark; `make bench` prints the ratio) on the same server in the
// same run. Target: s3sync at least as fast.
func BenchmarkFirstSync(b *testing.B) {
	srv := newServer(b)
	const n, size = 200, 4 << 20
	srv.putMany(n, size, func(i int) string { return fmt.Sprintf("models/checkpoints/m%03d.safetensors", i) })
	root, _ := filepath.Abs(filepath.Join("..", ".."))

	b.Run("baseline-rclone", func(b *testing.B) {
		script := filepath.Join(root, "hack", "bench", "s3-rclone.sh")
		// Install outside the timer: the first call may apt-get rclone.
		if out, err := exec.Command(script, "--install").CombinedOutput(); err != nil {
			b.Skipf("rclone baseline unavailable: %v\n%s", err, out)
		}
		b.SetBytes(n * size)
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			b.StartTimer()
			src := srv.opts.Bucket + "/" + srv.opts.keyPrefix() + "models"
			if out, err := exec.Command(script, src, dir).CombinedOutput(); err != nil {
				b.Fatalf("rclone sync: %v\n%s", err, out)
			}
			b.StopTimer()
			countFiles(b, dir, n)
			os.RemoveAll(dir)
			b.StartTimer()
		}
	})
	b.Run("s3sync", func(b *testing.B) {
		b.SetBytes(n * size)
		for b.Loop() {
			b.StopTimer()
			dir := b.TempDir()
			o := srv.options(dir)
			o.Logf = nil
			s, err := New(o)
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			res, err := s.SyncOnce(context.Background())
			if err != nil || res.Downloaded != n {
				b.Fatalf("sync: %+v %v", res, err)
			}
			b.StopTimer()
			os.RemoveAll(dir)
			b.StartTimer()
		}
	})
}

// BenchmarkResyncNoChange: a sync of 10,000 objects that are all up to date. Target ≤ 3 s.
func BenchmarkResyncNoChange(b *testing.B) {
	srv := newServer(b)
	const n = 10000
	start := time.Now()
	srv.putMany(n, 1024, func(i int) string { return fmt.Sprintf("models/loras/d%02d/l%05d.safetensors", i%50, i) })
	b.Logf("uploaded %d objects in %s", n, time.Since(start).Round(time.Millisecond))
	o := srv.options(b.TempDir())
	o.Logf = nil
	s, err := New(o)
	if err != nil {
		b.Fatal(err)
	}
	if res, err := s.SyncOnce(context.Background()); err != nil || res.Downloaded != n {
		b.Fatalf("first sync: %+v %v", res, err)
	}
	b.ResetTimer()
	for b.Loop() {
		res, err := s.SyncOnce(context.Background())
		if err != nil || res.Downloaded != 0 || res.Unchanged != n {
			b.Fatalf("re-sync: %+v %v", res, err)
		}
	}
}

func countFiles(b *testing.B, dir string, want int) {
	got := 0
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			got++
		}
		return nil
	})
	if got != want {
		b.Fatalf("%d files in %s, want %d", got, dir, want)
	}
}
