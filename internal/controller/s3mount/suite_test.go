package s3mount_test

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/testenv"
)

// One control plane for the package; every test works in a namespace of its own.
var (
	cp     = testenv.SharedControlPlane{CRDPaths: []string{filepath.Join("..", "..", "..", "config", "crd", "bases")}}
	scheme = runtime.NewScheme()
)

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
}

func TestMain(m *testing.M) { testenv.Main(m, &cp) }
