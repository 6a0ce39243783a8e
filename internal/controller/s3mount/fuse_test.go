package s3mount

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/testenv"
)

// TestFUSESidecarMounts runs the FUSE sidecar the webhook generates — its very arguments,
// environment (the Secret references resolved as the kubelet would) and startup probe — with
// Debian's rclone and fuse3 (hack/packages.sh) against the local S3 server, and reads the
// bucket through the mount. It needs /dev/fuse and the right to mount (root here); where the
// machine does not allow FUSE it is skipped, saying why.
func TestFUSESidecarMounts(t *testing.T) {
	for _, tool := range []string{"rclone", "fusermount3"} {
		if _, err := exec.LookPath(tool); err != nil {
			if testenv.InCI() {
				t.Fatalf("%s is missing: hack/packages.sh installs it", tool)
			}
			t.Skipf("%s is missing: run `make test`", tool)
		}
	}
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		t.Skipf("this machine does not allow FUSE: %v", err)
	} else {
		f.Close()
	}
	if os.Geteuid() != 0 {
		t.Skip("mounting with --allow-other needs root (or user_allow_other in /etc/fuse.conf)")
	}

	objects := map[string]string{
		"studio/models/checkpoints/base.safetensors": strings.Repeat("ckpt", 300_000), // 1.2 MB
		"studio/models/loras/style.safetensors":      "lora",
		"studio/input/cat.png":                       "png",
		"other/outside.txt":                          "not under the prefix",
	}
	b := testenv.S3Bucket(t, "fuse", objects)
	endpoint, access, secret, bucket := b.Endpoint, b.AccessKey, b.SecretKey, b.Bucket

	mp := filepath.Join(t.TempDir(), "s3")
	if err := os.MkdirAll(mp, 0o755); err != nil {
		t.Fatal(err)
	}
	m := s3m("models", mp, authv1alpha1.S3MountFUSE)
	m.Spec.Bucket, m.Spec.Endpoint, m.Spec.Region = bucket, endpoint, "us-east-1"
	sc := fuseSidecar(&m, testInjectCfg, "s3-models", mp)

	// The environment as the kubelet gives it: Secret references resolved, nothing else.
	secretData := map[string]string{"id": access, "secret": secret}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	for _, e := range sc.Env {
		v := e.Value
		if e.ValueFrom != nil {
			v = secretData[e.ValueFrom.SecretKeyRef.Key]
		}
		env = append(env, e.Name+"="+v)
	}
	cmd := exec.Command("rclone", sc.Args...)
	cmd.Env = env
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = exec.Command("fusermount3", "-uz", mp).Run()
		_ = cmd.Process.Kill()
	})

	// The startup probe is what holds ComfyUI back: it must turn true once mounted.
	probe := sc.StartupProbe.Exec.Command
	deadline := time.Now().Add(30 * time.Second)
	for exec.Command(probe[0], probe[1:]...).Run() != nil {
		select {
		case err := <-exited:
			t.Fatalf("rclone mount exited: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("startup probe %q never succeeded\n%s", probe, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}

	for k, want := range objects {
		rel, ok := strings.CutPrefix(k, "studio/")
		if !ok {
			if _, err := os.Stat(filepath.Join(mp, "..", k)); err == nil {
				t.Errorf("%s outside the prefix is visible", k)
			}
			continue
		}
		got, err := os.ReadFile(filepath.Join(mp, rel))
		if err != nil || string(got) != want {
			t.Errorf("%s through the mount: %d bytes, err %v; want %d bytes", rel, len(got), err, len(want))
		}
	}
	// Read-only by default: ComfyUI cannot write into the bucket.
	err := os.WriteFile(filepath.Join(mp, "models", "loras", "new.safetensors"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
		t.Errorf("writing through a read-only mount: err = %v, want a refusal", err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("rclone logged the secret key")
	}

	// SIGTERM (what the kubelet sends the sidecar) unmounts.
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(15 * time.Second):
		t.Fatal("rclone did not stop on SIGTERM")
	}
	if b, _ := os.ReadFile("/proc/mounts"); strings.Contains(string(b), " "+mp+" ") {
		t.Fatalf("%s still mounted after SIGTERM", mp)
	}
}
