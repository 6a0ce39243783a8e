package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/listen"
	"github.com/mss-login/mss-login/internal/progress"
)

// devFlags are the flags of `mss-login dev`.
type devFlags struct {
	dataDir string
	assets  string
	crds    string
	samples string
}

func devCmd(g *globals) *cobra.Command {
	f := devFlags{}
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Everything on one machine: a local control plane, the samples, the manager and the auth server",
		Long: "Starts kube-apiserver + etcd from --assets (hack/control-plane.sh builds them; etcd keeps its data in\n" +
			"DATA_DIR/etcd), installs the CRDs, applies the samples (server-side apply, so a second run changes\n" +
			"nothing), and runs the manager and the auth server against the SQLite file in DATA_DIR. Writes\n" +
			"DATA_DIR/kubeconfig for kubectl. Ctrl-C stops everything. `make run` is this command.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDev(cmd.Context(), g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", envOr("MSS_LOGIN_DATA_DIR", "data"), "the users database, etcd's data, the kubeconfig and the development SECRET_KEY")
	fl.StringVar(&f.assets, "assets", envOr("KUBEBUILDER_ASSETS", "bin/k8s/v1.37.2"), "directory with kube-apiserver, etcd and kubectl (hack/control-plane.sh)")
	fl.StringVar(&f.crds, "crds", "config/crd/bases", "CRD manifests to install")
	fl.StringVar(&f.samples, "samples", "config/samples", "manifests applied into the namespace default")
	return cmd
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func runDev(ctx context.Context, g *globals, f devFlags) error {
	steps := &progress.Steps{W: g.stderr, Total: 6, Start: progress.Start(time.Now()), Prefix: "mss-login dev"}
	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dataDir, "etcd"), 0o700); err != nil {
		return err
	}
	if err := devEnvironment(dataDir); err != nil {
		return err
	}
	cfg, err := g.load()
	if err != nil {
		return err
	}
	steps.Next("%s; data in %s", configNote(cfg), dataDir)
	if err := devPorts(cfg, steps); err != nil {
		return err
	}
	if err := devDatabase(cfg, steps); err != nil {
		return err
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(f.assets, b)); err != nil {
			return fmt.Errorf("%s not found in %s: run hack/control-plane.sh (make run does)", b, f.assets)
		}
	}
	steps.Next("starting kube-apiserver and etcd from %s, installing the CRDs", f.assets)
	env := &envtest.Environment{
		BinaryAssetsDirectory: f.assets,
		CRDDirectoryPaths:     []string{f.crds},
		ErrorIfCRDPathMissing: true,
	}
	// etcd keeps its data under DATA_DIR, so the resources survive a restart like the database.
	env.ControlPlane.Etcd = &envtest.Etcd{DataDir: filepath.Join(dataDir, "etcd")}
	restCfg, err := env.Start()
	if err != nil {
		return fmt.Errorf("control plane: %w", err)
	}
	defer func() {
		if err := env.Stop(); err != nil {
			fmt.Fprintln(g.stderr, "stopping the control plane:", err)
		}
		fmt.Fprintf(g.stderr, "mss-login dev stopped: the auth server, the manager and the control plane. The data in %s is kept: the next run goes on from it.\n", dataDir)
	}()
	kubeconfig := filepath.Join(dataDir, "kubeconfig")
	if err := writeAdminKubeconfig(env, kubeconfig); err != nil {
		return err
	}
	cl, err := client.New(restCfg, client.Options{})
	if err != nil {
		return err
	}
	// The samples are applied once: what the user changed or deleted stays as they left it.
	steps.Next("applying %s into the namespace default (each object once, see %s)", f.samples, filepath.Join(dataDir, ".samples-applied"))
	applied := newAppliedOnce(filepath.Join(dataDir, ".samples-applied"))
	if err := applyDir(ctx, cl, f.samples, applied); err != nil {
		return err
	}
	if err := applyManifest(ctx, cl, []byte(devLoopbackRule), applied); err != nil {
		return err
	}
	if err := applied.save(); err != nil {
		return err
	}
	steps.Printf("%d applied now, %d applied by an earlier run and left as they are", applied.fresh, len(applied.keys)-applied.fresh)

	s3, webhookURL, err := devS3(ctx, cl, dataDir)
	if err != nil {
		return err
	}
	steps.Next("S3Mount pod webhook on %s", webhookURL)

	steps.Next("starting the manager and the auth server (database %s)", cfg.SQLitePath())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, 2)
	// goRun runs f; the first to end ends the others (Ctrl-C cancels ctx for all of them).
	goRun := func(f func() error) { go func() { err := f(); cancel(); errs <- err }() }
	goRun(func() error {
		return runManager(ctx, cfg, managerFlags{
			kubeconfig: kubeconfig, metricsAddr: "0", probeAddr: "0", namespace: "default",
			resync: 5 * time.Minute, concurrency: 2, leaderElectionID: "mss-login-dev", s3: s3,
		})
	})
	goRun(func() error {
		return runAuthserver(ctx, cfg, slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelInfo})))
	})
	go func() {
		steps.Next("waiting for the sample owner to be Ready")
		if user, pw := waitForOwner(ctx, cl); ctx.Err() == nil {
			steps.Printf("ready")
			printDevBanner(g, cfg.ListenAddress, cfg.UpstreamURL, dataDir, cfg.SQLitePath(), kubeconfig, f.assets, user, pw, webhookURL)
		}
	}()
	var first error
	for range 2 {
		if err := <-errs; err != nil && !errors.Is(err, context.Canceled) && first == nil {
			first = err
		}
	}
	return first
}

// configNote says which configuration file the run uses, or where one would go.
func configNote(cfg *config.Config) string {
	if _, err := os.Stat(cfg.File); err == nil {
		return "configuration from " + cfg.File
	}
	return "no " + cfg.File + ": the embedded defaults"
}

// devPorts checks listen_address before anything starts, so that a taken port is reported in a
// second with its key, file and holder, not after the control plane; and moves metrics_address,
// which only this run uses, to a free loopback port unless the user set it.
func devPorts(cfg *config.Config, steps *progress.Steps) error {
	l, err := listen.Open(cfg.ListenAddress, listen.Setting{Key: "listen_address", Source: cfg.Source("listen_address"), File: cfg.File})
	if err != nil {
		return err
	}
	_ = l.Close()
	note := ""
	if cfg.Source("metrics_address") == "config.defaults.json" {
		cfg.MetricsAddress = "127.0.0.1:0"
		note = "; metrics on a free loopback port (metrics_address fixes one)"
	}
	steps.Printf("listen_address %s is free%s", cfg.ListenAddress, note)
	return nil
}

// devDatabase keeps the SQLite file at DATA_DIR/mss_login_data.db unless the user set
// users_db.sqlite_path: the original's default, data/mss_login_data.db, would put it in
// ./data/data. A database an earlier run left there is moved (with its -wal and -shm files).
func devDatabase(cfg *config.Config, steps *progress.Steps) error {
	if cfg.Source("users_db.sqlite_path") != "config.defaults.json" {
		return nil
	}
	old := cfg.SQLitePath()
	cfg.UsersDB.SQLitePath = "mss_login_data.db"
	now := cfg.SQLitePath()
	if _, err := os.Stat(now); err == nil {
		return nil
	}
	if _, err := os.Stat(old); err != nil {
		return nil
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if err := os.Rename(old+suffix, now+suffix); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("moving the database of an earlier run to %s: %w", now, err)
		}
	}
	_ = os.Remove(filepath.Dir(old)) // only when empty
	steps.Printf("moved the database of an earlier run from %s to %s", old, now)
	return nil
}

// devEnvironment points the configuration at dataDir and provides a development SECRET_KEY,
// generated once into dataDir/.dev-secret-key so that the next run opens the same database.
// Production sets SECRET_KEY from a Kubernetes Secret instead.
func devEnvironment(dataDir string) error {
	if err := os.Setenv("MSS_LOGIN_DATA_DIR", dataDir); err != nil {
		return err
	}
	if os.Getenv("SECRET_KEY") != "" {
		return nil
	}
	keyFile := filepath.Join(dataDir, ".dev-secret-key")
	key, err := os.ReadFile(keyFile)
	if err != nil || len(bytes.TrimSpace(key)) == 0 {
		b := make([]byte, 48)
		_, _ = rand.Read(b)
		key = []byte(base64.StdEncoding.EncodeToString(b))
		if err := os.WriteFile(keyFile, key, 0o600); err != nil {
			return err
		}
	}
	return os.Setenv("SECRET_KEY", strings.TrimSpace(string(key)))
}

// devLoopbackRule admits this machine: the sample IPRule "office" is an Allow rule, which
// switches on allow-list mode, and would otherwise lock the local browser out.
const devLoopbackRule = `apiVersion: auth.mss-login.dev/v1alpha1
kind: IPRule
metadata:
  name: dev-loopback
  namespace: default
spec:
  action: Allow
  cidrs: ["127.0.0.0/8", "::1/128"]
  comment: mss-login dev — this machine
`

func writeAdminKubeconfig(env *envtest.Environment, path string) error {
	user, err := env.AddUser(envtest.User{Name: "admin", Groups: []string{"system:masters"}}, &rest.Config{})
	if err != nil {
		return err
	}
	kc, err := user.KubeConfig()
	if err != nil {
		return err
	}
	return os.WriteFile(path, kc, 0o600)
}

// applyDir server-side applies every manifest of dir (but kustomization.yaml) into default,
// each object once (applied).
func applyDir(ctx context.Context, cl client.Client, dir string, applied *appliedOnce) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return err
	}
	for _, p := range files {
		if filepath.Base(p) == "kustomization.yaml" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := applyManifest(ctx, cl, b, applied); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

// applyManifest server-side applies each document not applied before (applied nil: every one).
func applyManifest(ctx context.Context, cl client.Client, manifest []byte, applied *appliedOnce) error {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(manifest), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if len(u.Object) == 0 {
			continue
		}
		if u.GetNamespace() == "" {
			u.SetNamespace("default")
		}
		key := u.GetKind() + "/" + u.GetNamespace() + "/" + u.GetName()
		if applied.has(key) {
			continue
		}
		if err := cl.Patch(ctx, u, client.Apply, client.FieldOwner("mss-login-dev"), client.ForceOwnership); err != nil {
			return fmt.Errorf("apply %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		applied.add(key)
	}
}

// waitForOwner waits (up to a minute) for the owner ComfyUser to be Ready and returns its
// username and the password from its Secret, for the banner.
func waitForOwner(ctx context.Context, cl client.Client) (string, string) {
	deadline := time.Now().Add(time.Minute)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("auth.mss-login.dev/v1alpha1")
		u.SetKind("ComfyUserList")
		list := &unstructured.UnstructuredList{Object: u.Object}
		if err := cl.List(ctx, list, client.InNamespace("default")); err == nil {
			for _, item := range list.Items {
				if owner, _, _ := unstructured.NestedBool(item.Object, "spec", "owner"); !owner || !ready(item) {
					continue
				}
				name, _, _ := unstructured.NestedString(item.Object, "spec", "username")
				secret, _, _ := unstructured.NestedString(item.Object, "spec", "passwordSecretRef", "name")
				key, _, _ := unstructured.NestedString(item.Object, "spec", "passwordSecretRef", "key")
				if key == "" {
					key = "password"
				}
				var s corev1.Secret
				if err := cl.Get(ctx, types.NamespacedName{Namespace: "default", Name: secret}, &s); err == nil {
					return name, string(s.Data[key])
				}
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
	return "", ""
}

func ready(u unstructured.Unstructured) bool {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, c := range conds {
		if m, ok := c.(map[string]any); ok && m["type"] == "Ready" && m["status"] == "True" {
			return true
		}
	}
	return false
}

func printDevBanner(g *globals, listen, upstream, dataDir, database, kubeconfig, assets, user, pw, webhook string) {
	_, port, _ := net.SplitHostPort(listen)
	owner := "(the owner ComfyUser is not Ready yet: kubectl describe comfyuser owner)"
	if user != "" {
		owner = fmt.Sprintf("%s / %s   (from the Secret of config/samples/owner_secret.yaml)", user, pw)
	}
	kubectl, _ := filepath.Abs(filepath.Join(assets, "kubectl"))
	fmt.Fprintf(g.stdout, `
mss-login dev is running (Ctrl-C stops everything)

  login page:  http://127.0.0.1:%s/login
  owner:       %s
  ComfyUI:     %s (upstream_url; a "not reachable" page while nothing listens there)
  data:        %s (etcd, development SECRET_KEY; reused by the next run)
  database:    %s
  S3 webhook:  %s (pods an S3Mount selects get the s3sync sidecar;
               there is no kubelet here, so they are admitted but never run)

  KUBECONFIG=%s %s get mss-login
  KUBECONFIG=%s %s get lockouts
  break-glass on this database (another terminal):
  MSS_LOGIN_DATA_DIR=%s USERS_DB_SQLITE_PATH=%s SECRET_KEY="$(cat %s)" bin/mss-login admin users list

`, port, owner, upstream, dataDir, database, webhook, kubeconfig, kubectl, kubeconfig, kubectl, dataDir, database, filepath.Join(dataDir, ".dev-secret-key"))
}

// appliedOnce remembers, in a file of the data directory, which sample objects were applied,
// so that a later run applies only new ones: a sample the user changed (alice's password) or
// deleted (an IP rule) is not put back. Deleting the file applies them all again.
type appliedOnce struct {
	path  string
	keys  map[string]bool
	fresh int // applied by this run
}

func newAppliedOnce(path string) *appliedOnce {
	a := &appliedOnce{path: path, keys: map[string]bool{}}
	if b, err := os.ReadFile(path); err == nil {
		for _, k := range strings.Split(string(b), "\n") {
			if k = strings.TrimSpace(k); k != "" && !strings.HasPrefix(k, "#") {
				a.keys[k] = true
			}
		}
	}
	return a
}

func (a *appliedOnce) has(key string) bool { return a != nil && a.keys[key] }

func (a *appliedOnce) add(key string) {
	if a != nil && !a.keys[key] {
		a.keys[key] = true
		a.fresh++
	}
}

func (a *appliedOnce) save() error {
	keys := slices.Sorted(maps.Keys(a.keys))
	return os.WriteFile(a.path, []byte("# sample objects mss-login dev applied; delete this file to apply them all again\n"+
		strings.Join(keys, "\n")+"\n"), 0o600)
}
