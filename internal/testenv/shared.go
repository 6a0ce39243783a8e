package testenv

import (
	"context"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// SharedControlPlane is one control plane for every test of a package: starting
// kube-apiserver + etcd takes seconds, so the tests share it and each works in namespaces of
// its own (Namespace). The first test that asks starts it; Main stops it.
type SharedControlPlane struct {
	// CRDPaths are installed when it starts.
	CRDPaths []string

	once sync.Once
	env  *envtest.Environment
	cfg  *rest.Config
	err  error
}

// Config returns the shared API server (the test is skipped, or fails under CI, without
// $KUBEBUILDER_ASSETS). Its client is not throttled: the tests time things.
func (s *SharedControlPlane) Config(t testing.TB) *rest.Config {
	t.Helper()
	assets := Require(t, Assets)
	s.once.Do(func() {
		s.env = &envtest.Environment{
			BinaryAssetsDirectory: assets,
			CRDDirectoryPaths:     s.CRDPaths,
			ErrorIfCRDPathMissing: len(s.CRDPaths) > 0,
		}
		s.cfg, s.err = s.env.Start()
		if s.cfg != nil {
			s.cfg.QPS, s.cfg.Burst = -1, 0
		}
	})
	if s.err != nil {
		t.Fatalf("starting the control plane: %v", s.err)
	}
	return s.cfg
}

// Main is the TestMain of a package that shares cp: controller-runtime's log is discarded
// (MSS_TEST_VERBOSE=1 shows it), the tests run, and cp is stopped if a test started it.
func Main(m *testing.M, cp *SharedControlPlane) {
	if os.Getenv("MSS_TEST_VERBOSE") != "" {
		logf.SetLogger(zap.New(zap.UseDevMode(true)))
	} else {
		logf.SetLogger(zap.New(zap.WriteTo(discard{})))
	}
	code := m.Run()
	if cp.env != nil {
		_ = cp.env.Stop()
	}
	os.Exit(code)
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// Namespace creates a namespace with a generated name (op-…) and returns its name.
func Namespace(t testing.TB, ctx context.Context, c client.Client) string {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "op-"}}
	if err := c.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	return ns.Name
}
