package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/progress"
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

// The dev database sits at DATA_DIR/mss_login_data.db; one an earlier run left in DATA_DIR/data
// is moved with its WAL, and a sqlite_path the user set is left alone.
func TestDevDatabasePath(t *testing.T) {
	dir := t.TempDir()
	env := func(k string) (string, bool) {
		if k == "MSS_LOGIN_DATA_DIR" {
			return dir, true
		}
		return "", false
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"mss_login_data.db", "mss_login_data.db-wal"} {
		if err := os.WriteFile(filepath.Join(dir, "data", f), []byte(f), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, _, err := config.LoadBytes(nil, "", env)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	steps := &progress.Steps{W: &out, Total: 1}
	if err := devDatabase(cfg, steps); err != nil {
		t.Fatal(err)
	}
	if got := cfg.SQLitePath(); got != filepath.Join(dir, "mss_login_data.db") {
		t.Errorf("database at %s", got)
	}
	for _, f := range []string{"mss_login_data.db", "mss_login_data.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(dir, f)); err != nil || string(b) != f {
			t.Errorf("%s not moved: %q %v", f, b, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("the emptied data/data directory is still there")
	}
	if !strings.Contains(out.String(), "moved the database of an earlier run") {
		t.Errorf("no note: %q", out.String())
	}

	set, _, err := config.LoadBytes([]byte(`{"users_db": {"sqlite_path": "elsewhere/users.db"}}`), "config.json", env)
	if err != nil {
		t.Fatal(err)
	}
	if err := devDatabase(set, steps); err != nil || set.SQLitePath() != filepath.Join(dir, "elsewhere", "users.db") {
		t.Errorf("a sqlite_path the user set was changed: %s %v", set.SQLitePath(), err)
	}
}
