package testenv

import (
	"os"
	"path/filepath"
	"testing"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ControlPlane starts kube-apiserver + etcd from $KUBEBUILDER_ASSETS (built by
// hack/control-plane.sh; never downloaded), installs the CRDs found in crdPaths, and stops it
// at cleanup.
func ControlPlane(t testing.TB, crdPaths ...string) (*envtest.Environment, *rest.Config) {
	t.Helper()
	assets := Require(t, Assets)
	env := &envtest.Environment{
		BinaryAssetsDirectory: assets,
		CRDDirectoryPaths:     crdPaths,
		ErrorIfCRDPathMissing: len(crdPaths) > 0,
	}
	cfg, err := env.Start()
	if err != nil {
		t.Fatalf("starting the envtest control plane from %s: %v", assets, err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stopping the control plane: %v", err)
		}
	})
	return env, cfg
}

// AdminKubeconfig writes a kubeconfig for a cluster-admin user of env (for kubectl and helm)
// and returns its path.
func AdminKubeconfig(t testing.TB, env *envtest.Environment) string {
	t.Helper()
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := user.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(path, kc, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
