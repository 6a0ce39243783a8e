package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// `mss-login manager --kubeconfig FILE` against a real API server: a ComfyUser becomes Ready
// with its row in the configured SQLite database, and /readyz answers.
func TestManagerCommand(t *testing.T) {
	dir := isolate(t)
	env, cfg := testenv.ControlPlane(t, filepath.Join("..", "..", "config", "crd", "bases"))
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, env.KubeConfig, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SECRET_KEY", testenv.Secret)
	t.Setenv("USERS_DB_ENCRYPTION_LEVEL", "low")
	probe := freeAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		root := newRoot(os.Stdout, os.Stderr)
		root.SetArgs([]string{"manager", "--kubeconfig", kubeconfig, "--metrics-bind-address", "0",
			"--health-probe-bind-address", probe, "--namespace", "default", "--resync-period", "10s"})
		done <- root.ExecuteContext(ctx)
	}()
	var stopped bool
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Errorf("manager: %v", err)
			}
		}
	}
	defer stop()

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	if err := c.Create(bg, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "owner-pw", Namespace: "default"},
		StringData: map[string]string{"password": "owner-password-1"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.Create(bg, &authv1alpha1.ComfyUser{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "default"},
		Spec: authv1alpha1.ComfyUserSpec{Username: "owner", Role: "admin", Owner: true,
			PasswordSecretRef: &authv1alpha1.SecretKeyRef{Name: "owner-pw"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "ComfyUser Ready and /readyz OK", func() error {
		var u authv1alpha1.ComfyUser
		if err := c.Get(bg, client.ObjectKey{Namespace: "default", Name: "owner"}, &u); err != nil {
			return err
		}
		if !meta.IsStatusConditionTrue(u.Status.Conditions, authv1alpha1.ConditionReady) {
			return fmt.Errorf("not Ready: %+v", u.Status.Conditions)
		}
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	stop()

	s, err := store.Open(bg, store.Options{Backend: store.SQLite, SQLitePath: filepath.Join(dir, "data", "mss_login_data.db"), EncryptionLevel: "low", SecretKey: testenv.Secret})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.UserByName(bg, "owner")
	if err != nil || !u.Owner || u.Role != "admin" || u.OwnerRef != "ComfyUser/default/owner" {
		t.Fatalf("row %+v, %v", u, err)
	}
}

func freeAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitFor(t *testing.T, timeout time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	err := errors.New("never checked")
	for time.Now().Before(deadline) {
		if err = f(); err == nil {
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("%s: not within %s: %v", what, timeout, err)
}
