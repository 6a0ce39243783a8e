package controllers_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/store"
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
			var wg sync.WaitGroup
			work := make(chan int)
			for w := 0; w < 8; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range work {
						name := fmt.Sprintf("u%05d", i)
						s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name + "-pw", Namespace: h.ns}, StringData: map[string]string{"password": hash}}
						if err := h.c.Create(h.ctx, s); err != nil {
							t.Error(err)
							return
						}
						if err := h.c.Create(h.ctx, user(name, "user_"+name, func(u *authv1alpha1.ComfyUser) { u.Namespace = h.ns })); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			for i := 0; i < n; i++ {
				work <- i
			}
			close(work)
			wg.Wait()
			created := time.Since(start)
			deadline := time.Now().Add(10 * time.Minute)
			ready := 0
			for time.Now().Before(deadline) {
				var list authv1alpha1.ComfyUserList
				if err := h.c.List(h.ctx, &list, client.InNamespace(h.ns)); err != nil {
					t.Fatal(err)
				}
				ready = 0
				for _, u := range list.Items {
					if meta.IsStatusConditionTrue(u.Status.Conditions, authv1alpha1.ConditionReady) {
						ready++
					}
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
