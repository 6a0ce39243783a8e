package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The samples are applied once: a second run leaves a sample the user changed as changed and
// one they deleted deleted, and applies only samples new since.
func TestSamplesAppliedOnce(t *testing.T) {
	_, cfg := testenv.ControlPlane(t, filepath.Join("..", "..", "config", "crd", "bases"))
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(authv1alpha1.AddToScheme(scheme))
	cl, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	samples, data := t.TempDir(), t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(samples, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", "apiVersion: v1\nkind: Secret\nmetadata: {name: alice-password}\nstringData: {password: Sample-pass-1!}\n")
	write("b.yaml", "apiVersion: auth.mss-login.dev/v1alpha1\nkind: ComfyRole\nmetadata: {name: artists}\nspec: {permissions: {can_run: true}}\n")
	run := func() {
		t.Helper()
		applied := newAppliedOnce(filepath.Join(data, ".samples-applied"))
		if err := applyDir(ctx, cl, samples, applied); err != nil {
			t.Fatal(err)
		}
		if err := applied.save(); err != nil {
			t.Fatal(err)
		}
	}
	run()
	var sec corev1.Secret
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "default", Name: "alice-password"}, &sec); err != nil {
		t.Fatal(err)
	}
	sec.Data = map[string][]byte{"password": []byte("Changed-by-me-2!")}
	if err := cl.Update(ctx, &sec); err != nil {
		t.Fatal(err)
	}
	role := &authv1alpha1.ComfyRole{}
	role.Name, role.Namespace = "artists", "default"
	if err := cl.Delete(ctx, role); err != nil {
		t.Fatal(err)
	}
	write("c.yaml", "apiVersion: auth.mss-login.dev/v1alpha1\nkind: ComfyRole\nmetadata: {name: newcomers}\nspec: {permissions: {can_run: true}}\n")
	run()
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "default", Name: "alice-password"}, &sec); err != nil || string(sec.Data["password"]) != "Changed-by-me-2!" {
		t.Errorf("a changed sample was put back: %q %v", sec.Data["password"], err)
	}
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "default", Name: "artists"}, &authv1alpha1.ComfyRole{}); err == nil {
		t.Error("a deleted sample came back")
	}
	if err := cl.Get(ctx, types.NamespacedName{Namespace: "default", Name: "newcomers"}, &authv1alpha1.ComfyRole{}); err != nil {
		t.Errorf("a new sample was not applied: %v", err)
	}
}
