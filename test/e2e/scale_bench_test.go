package e2e_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	crclient "sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/password"
	"github.com/mss-login/mss-login/internal/testenv"
)

// BenchmarkManagerComfyUsers is DESIGN.md's reconcile target with the real manager process
// (the binary, SQLite, envtest): MSS_BENCH_SCALE ComfyUsers (default 1,000; the target is
// also stated for 10,000) with pre-hashed passwords, from the first create until all are
// Ready, and the manager's resident memory then. Baseline: the same process's RSS when idle,
// measured in the same run. Reported: s-to-ready, MiB-rss, MiB-peak-rss, x-idle-rss.
//
//	MSS_BENCH_SCALE=10000 make bench BENCH=BenchmarkManagerComfyUsers
func BenchmarkManagerComfyUsers(b *testing.B) {
	n, _ := strconv.Atoi(os.Getenv("MSS_BENCH_SCALE"))
	if n <= 0 {
		n = 1000
	}
	// The SQLite file's encryption level: the default's (secure, Argon2id with 256 MiB) unless
	// MSS_BENCH_SQLITE_LEVEL says otherwise ("" = none).
	level, ok := os.LookupEnv("MSS_BENCH_SQLITE_LEVEL")
	if !ok {
		level = "secure"
	}
	hash, err := password.Hash("scale-password-1!")
	if err != nil {
		b.Fatal(err)
	}
	env, cfg := testenv.ControlPlane(b, filepath.Join(root, "config/crd/bases"))
	scheme := runtime.NewScheme()
	_ = clientgoscheme.AddToScheme(scheme)
	_ = authv1alpha1.AddToScheme(scheme)
	cfg.QPS, cfg.Burst = 500, 1000
	c, err := crclient.New(cfg, crclient.Options{Scheme: scheme})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const ns = "scale"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		b.Fatal(err)
	}

	bin := binary(b)
	dir := b.TempDir()
	kubeconfig := testenv.AdminKubeconfig(b, env)
	mgr := start(b, "manager", []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "MSS_LOGIN_DATA_DIR=" + dir,
		"SECRET_KEY=" + secretKey, "USERS_DB_BACKEND=sqlite", "USERS_DB_SQLITE_PATH=" + filepath.Join(dir, "users.db"),
		"USERS_DB_ENCRYPTION_LEVEL=" + level, "KUBECONFIG=" + kubeconfig},
		bin, "manager", "--namespace", ns, "--metrics-bind-address", "0", "--health-probe-bind-address", "127.0.0.1:0",
		"--s3-webhook=false", "--resync-period", "10m")
	time.Sleep(5 * time.Second) // started, caches synced, idle
	idle, _ := procMiB(mgr.cmd.Process.Pid, "VmRSS")

	b.ResetTimer()
	start := time.Now()
	testenv.CreateComfyUsers(b, ctx, c, ns, n, hash)
	ready := 0
	for deadline := time.Now().Add(30 * time.Minute); ready < n && time.Now().Before(deadline); {
		if mgr.exited() {
			b.Fatalf("the manager exited:\n%s", tail(mgr.log.String(), 3000))
		}
		if ready, err = testenv.ReadyComfyUsers(ctx, c, ns); err != nil {
			b.Fatal(err)
		}
		time.Sleep(time.Second)
	}
	took := time.Since(start)
	b.StopTimer()
	if ready != n {
		b.Fatalf("%d of %d ComfyUsers Ready after %s", ready, n, took)
	}
	rss, _ := procMiB(mgr.cmd.Process.Pid, "VmRSS")
	peak, _ := procMiB(mgr.cmd.Process.Pid, "VmHWM")
	b.ReportMetric(took.Seconds(), "s-to-ready")
	b.ReportMetric(rss, "MiB-rss")
	b.ReportMetric(peak, "MiB-peak-rss")
	b.ReportMetric(rss/idle, "x-idle-rss")
	b.Logf("%d ComfyUsers Ready in %s; manager RSS %.0f MiB (peak %.0f, idle %.0f); SQLite encryption level %q",
		n, took.Round(time.Second), rss, peak, idle, level)
}

// procMiB reads a size field (VmRSS, VmHWM) of /proc/<pid>/status in MiB.
func procMiB(pid int, field string) (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
			return kb / 1024, err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
