package e2e_test

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/mss-login/mss-login/internal/testenv"
)

// TestDevS3Mount is issue 5's "done when" on `make run`'s own command, `mss-login dev`: in its
// local control plane a pod labelled for an S3Mount is admitted with the s3sync sidecar (the
// manager serves the webhook on loopback with its own certificate), and the sidecar's command
// line, run as the kubelet would run it, fills a directory from the local S3 server exactly —
// the selected model folders and input/, nothing else — and brings a user's workflow down.
func TestDevS3Mount(t *testing.T) {
	assets := testenv.Require(t, testenv.Assets)
	bin := binary(t)

	// The bucket: two selected model folders (one with a sub-folder), one not selected, input,
	// a workflow, and an object outside the prefix.
	objects := map[string]string{
		"studio/models/checkpoints/sdxl.safetensors":  strings.Repeat("c", 3<<20),
		"studio/models/loras/style.safetensors":       "lora",
		"studio/models/loras/people/face.safetensors": "face",
		"studio/models/vae/skip.safetensors":          "not a selected folder",
		"studio/input/cat.png":                        "png",
		"studio/users/alice/workflows/flow.json":      `{"nodes":[]}`,
		"elsewhere/models/loras/other.safetensors":    "outside the prefix",
	}
	b := testenv.S3Bucket(t, "dev", objects)
	endpoint, access, secret, bucket := b.Endpoint, b.AccessKey, b.SecretKey, b.Bucket

	dataDir := t.TempDir()
	cfg, _ := json.Marshal(map[string]any{
		"listen_address": freeAddr(t), "metrics_address": freeAddr(t), "upstream_url": "http://" + freeAddr(t),
		"auto_update": map[string]any{"enabled": false},
	})
	if err := os.WriteFile(filepath.Join(dataDir, "config.json"), cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	dev := start(t, "dev", []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "MSS_LOGIN_DATA_DIR=" + dataDir}, bin,
		"dev", "--data-dir", dataDir, "--assets", assets,
		"--crds", filepath.Join(root, "config/crd/bases"), "--samples", filepath.Join(root, "config/samples"))
	eventually(t, 120*time.Second, "mss-login dev banner", func() string {
		if dev.exited() {
			t.Fatalf("mss-login dev exited:\n%s", tail(dev.log.String(), 3000))
		}
		if !strings.Contains(dev.log.String(), "S3 webhook:  https://127.0.0.1:") {
			return "no banner yet"
		}
		return ""
	})
	k := &kube{t: t, bin: filepath.Join(assets, "kubectl"), env: append(os.Environ(), "KUBECONFIG="+filepath.Join(dataDir, "kubeconfig"))}

	k.apply(fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata: {name: s3-creds, namespace: default}
stringData: {AWS_ACCESS_KEY_ID: %q, AWS_SECRET_ACCESS_KEY: %q}
---
apiVersion: auth.mss-login.dev/v1alpha1
kind: S3Mount
metadata: {name: models, namespace: default}
spec:
  bucket: %s
  endpoint: %s
  pathStyle: true
  prefix: studio
  modelFolders: [checkpoints, loras]
  input: true
  selector: {matchLabels: {app: comfyui}}
  credentialsSecretRef: {name: s3-creds}
  workflowSync: {userDirectory: /comfyui/user}
`, access, secret, bucket, endpoint))
	k.must("wait", "--for=condition=Ready", "--timeout=60s", "s3mount/models")

	k.apply(`apiVersion: v1
kind: Pod
metadata: {name: comfy, namespace: default, labels: {app: comfyui}}
spec:
  containers:
  - {name: comfyui, image: comfyui:latest}
`)
	var pod corev1.Pod
	if err := json.Unmarshal([]byte(k.must("get", "pod", "comfy", "-o", "json")), &pod); err != nil {
		t.Fatal(err)
	}
	if len(pod.Spec.InitContainers) != 1 || pod.Spec.InitContainers[0].Name != "s3sync-models" {
		t.Fatalf("the pod was admitted without the sidecar: %+v", pod.Spec.InitContainers)
	}
	sc := pod.Spec.InitContainers[0]
	if sc.RestartPolicy == nil || *sc.RestartPolicy != corev1.ContainerRestartPolicyAlways || sc.StartupProbe == nil {
		t.Fatalf("not a native sidecar held by a startup probe: %+v", sc)
	}
	mounts := map[string]bool{}
	for _, m := range pod.Spec.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m.ReadOnly
	}
	if ro, ok := mounts["/workspace/s3"]; !ok || !ro {
		t.Fatalf("ComfyUI does not mount the models read-only at /workspace/s3: %+v", pod.Spec.Containers[0].VolumeMounts)
	}
	if _, ok := mounts["/comfyui/user"]; !ok {
		t.Fatalf("ComfyUI does not share its user directory with the sidecar: %+v", pod.Spec.Containers[0].VolumeMounts)
	}
	if raw := k.must("get", "pod", "comfy", "-o", "yaml"); strings.Contains(raw, secret) {
		t.Fatal("the secret key is in the pod spec")
	}

	// The sidecar as the kubelet would start it: its args and its env (Secret references
	// resolved), the volume paths moved to temporary directories, once instead of forever.
	models, userDir := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(userDir, "alice"), 0o755); err != nil {
		t.Fatal(err)
	}
	var args []string
	for _, a := range sc.Args {
		switch {
		case a == "--dir=/workspace/s3":
			args = append(args, "--dir="+models, "--mount-path=/workspace/s3")
		case a == "--workflows-dir=/comfyui/user":
			args = append(args, "--workflows-dir="+userDir)
		case strings.HasPrefix(a, "--listen="):
		default:
			args = append(args, a)
		}
	}
	env := []string{"HOME=" + t.TempDir()}
	values := map[string]string{"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}
	for _, e := range sc.Env {
		if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.ValueFrom.SecretKeyRef.Name != "s3-creds" {
			t.Fatalf("sidecar env %s is not a reference to the Secret", e.Name)
		}
		env = append(env, e.Name+"="+values[e.ValueFrom.SecretKeyRef.Key])
	}
	out, err := run(env, bin, append(args, "--once")...)
	if err != nil {
		t.Fatalf("mss-login %s --once: %v\n%s", strings.Join(args, " "), err, out)
	}

	want := map[string]string{}
	for k, v := range objects {
		rel, ok := strings.CutPrefix(k, "studio/")
		if ok && (strings.HasPrefix(rel, "models/checkpoints/") || strings.HasPrefix(rel, "models/loras/") || strings.HasPrefix(rel, "input/")) {
			want[rel] = v
		}
	}
	got := files(t, models)
	paths, ok := got["extra_model_paths.yaml"]
	delete(got, "extra_model_paths.yaml")
	if !ok || !strings.Contains(paths, `base_path: "/workspace/s3"`) || !strings.Contains(paths, `loras: "models/loras"`) {
		t.Errorf("extra_model_paths.yaml:\n%s", paths)
	}
	if !maps.Equal(got, want) {
		t.Errorf("synced directory holds %v, want exactly %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	if wf, err := os.ReadFile(filepath.Join(userDir, "alice", "workflows", "flow.json")); err != nil || string(wf) != `{"nodes":[]}` {
		t.Errorf("alice's workflow: %q, %v", wf, err)
	}

	eventually(t, 30*time.Second, "kubectl get s3mount counts the pod", func() string {
		if n := k.must("get", "s3mount", "models", "-o", "jsonpath={.status.injectedPods}"); n != "1" {
			return "injectedPods " + n
		}
		return ""
	})
}

// files maps every regular file under dir, outside s3sync's own .s3sync folder, to its content.
func files(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() && rel == ".s3sync" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[filepath.ToSlash(rel)] = string(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
