// Package firstrun tests what a new user's first `make run` goes through before mss-login
// itself starts: hack/control-plane.sh fetching the official envtest archive (from a loopback
// server standing in for GitHub), checking its checksum, and failing over quickly.
package firstrun

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

var root = func() string { r, _ := filepath.Abs(filepath.Join("..", "..")); return r }()

// archive is an envtest tarball of controller-tools' layout with three small scripts.
func archive(t *testing.T) []byte {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		body := "#!/bin/sh\necho " + b + "\n"
		if err := tw.WriteHeader(&tar.Header{Name: "controller-tools/envtest/" + b, Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write([]byte(body))
	}
	_ = tw.Close()
	_ = gz.Close()
	return buf.Bytes()
}

// controlPlane runs hack/control-plane.sh for a version no cache has, into a temp directory,
// never building (the fallback build takes minutes and is what make test's own run does).
func controlPlane(t *testing.T, index string) (dir, stderr string, err error) {
	dir = filepath.Join(t.TempDir(), "k8s")
	cmd := exec.Command(filepath.Join(root, "hack", "control-plane.sh"))
	cmd.Env = append(os.Environ(), "K8S_VERSION=v1.99.0", "MSS_K8S_DIR="+dir, "MSS_ENVTEST_INDEX_URL="+index,
		"MSS_ENVTEST_BUILD=0", "MSS_PROGRESS_STEP=2/3", "MSS_PROGRESS_PREFIX=make run")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	if err == nil && strings.TrimSpace(out.String()) != dir {
		t.Errorf("printed %q, want the directory %s", out.String(), dir)
	}
	return dir, errb.String(), err
}

func serve(t *testing.T, hash string, tarball []byte) string {
	name := fmt.Sprintf("envtest-v1.99.0-%s-%s.tar.gz", runtime.GOOS, runtime.GOARCH)
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/envtest-releases.yaml":
			fmt.Fprintf(w, "releases:\n  v1.98.0:\n    %s:\n      hash: 00\n      selfLink: %s/wrong\n  v1.99.0:\n    %s:\n      hash: %s\n      selfLink: %s/download/%s\n",
				strings.ReplaceAll(name, "99", "98"), srv.URL, name, hash, srv.URL, name)
		case "/download/" + name:
			_, _ = w.Write(tarball)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/envtest-releases.yaml"
}

func TestControlPlaneOfficialArchive(t *testing.T) {
	tarball := archive(t)
	sum := sha512.Sum512(tarball)
	dir, stderr, err := controlPlane(t, serve(t, hex.EncodeToString(sum[:]), tarball))
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	for _, b := range []string{"etcd", "kube-apiserver", "kubectl"} {
		if out, err := exec.Command(filepath.Join(dir, b)).Output(); err != nil || strings.TrimSpace(string(out)) != b {
			t.Errorf("%s not installed: %q %v", b, out, err)
		}
	}
	for _, want := range []string{"make run [2/3 ", "control plane v1.99.0: trying the official envtest archive", "installed from the official archive"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("no %q in\n%s", want, stderr)
		}
	}
	// A second run finds them, prints the directory and fetches nothing.
	cmd := exec.Command(filepath.Join(root, "hack", "control-plane.sh"))
	cmd.Env = append(os.Environ(), "K8S_VERSION=v1.99.0", "MSS_K8S_DIR="+dir, "MSS_ENVTEST_INDEX_URL=http://127.0.0.1:1/", "MSS_ENVTEST_BUILD=0")
	if out, err := cmd.Output(); err != nil || strings.TrimSpace(string(out)) != dir {
		t.Errorf("second run: %q %v", out, err)
	}
}

func TestControlPlaneArchiveWithWrongChecksum(t *testing.T) {
	tarball := archive(t)
	dir, stderr, err := controlPlane(t, serve(t, strings.Repeat("ab", 64), tarball))
	if err == nil {
		t.Fatalf("an archive that does not match its sha512 was accepted\n%s", stderr)
	}
	if !strings.Contains(stderr, "does not match the sha512 of the release index") || !strings.Contains(stderr, "not building (MSS_ENVTEST_BUILD=0)") {
		t.Errorf("stderr does not say why:\n%s", stderr)
	}
	if _, err := os.Stat(filepath.Join(dir, "kube-apiserver")); err == nil {
		t.Error("a binary of the refused archive was installed")
	}
}

// No network (this machine): the attempt fails within seconds and says so, then the build runs.
func TestControlPlaneUnreachableFailsFast(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close() // a port nothing listens on
	began := time.Now()
	_, stderr, err := controlPlane(t, "http://"+addr+"/envtest-releases.yaml")
	if err == nil || !strings.Contains(stderr, "the release index is not reachable") {
		t.Fatalf("err %v, stderr:\n%s", err, stderr)
	}
	if d := time.Since(began); d > 20*time.Second {
		t.Errorf("giving up took %v", d)
	}
}
