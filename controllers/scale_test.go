package controllers_test

import (
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// TestScaleComfyUsers is the reconcile benchmark of DESIGN.md: N ComfyUsers (default 1,000)
// with pre-hashed passwords, from the first create to all Ready. Outside the normal run:
//
//	MSS_BENCH_SCALE=1000 MSS_TEST_BACKENDS=sqlite go test ./controllers -run TestScaleComfyUsers -v
func TestScaleComfyUsers(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("MSS_BENCH_SCALE"))
	if n <= 0 {
		t.Skip("set MSS_BENCH_SCALE=1000 to run the scale benchmark")
	}
	hash, err := password.Hash("scale-password")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends(store.SQLite, store.PostgreSQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			start := time.Now()
			testenv.CreateComfyUsers(t, h.ctx, h.c, h.ns, n, hash)
			created := time.Since(start)
			deadline := time.Now().Add(10 * time.Minute)
			ready := 0
			for time.Now().Before(deadline) {
				if ready, err = testenv.ReadyComfyUsers(h.ctx, h.c, h.ns); err != nil {
					t.Fatal(err)
				}
				if ready == n {
					break
				}
				time.Sleep(250 * time.Millisecond)
			}
			total := time.Since(start)
			if ready != n {
				t.Fatalf("%d of %d Ready after %s", ready, n, total)
			}
			count, _ := h.store.CountUsers(h.ctx)
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			t.Logf("%s: %d ComfyUsers Ready in %s (objects created in %s); %d rows; heap in use %d MiB (test process: API client + manager)",
				b, n, total.Round(10*time.Millisecond), created.Round(10*time.Millisecond), count, ms.HeapInuse>>20)
		})
	}
}
