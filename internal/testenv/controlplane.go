package testenv

import (
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
