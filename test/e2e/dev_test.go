package e2e_test

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/testenv"
)

// TestDevFirstRun is issue 15 through `mss-login dev`, the command `make run` ends in: a taken
// listen_address is reported at once (before the control plane starts) with its key, the file
// to change it in and the process that holds the port; a normal start prints numbered, timed
// steps to the end, puts the metrics (only this run uses them) on a free port, and Ctrl-C says
// what stopped and that the data is kept.
func TestDevFirstRun(t *testing.T) {
	assets := testenv.Require(t, testenv.Assets)
	bin := binary(t)
	dataDir := t.TempDir()
	cfgFile := filepath.Join(dataDir, "config.json")
	writeConfig := func(v map[string]any) {
		t.Helper()
		b, _ := json.Marshal(v)
		if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dataDir, "MSS_LOGIN_DATA_DIR=" + dataDir}
	args := []string{"dev", "--data-dir", dataDir, "--assets", assets,
		"--crds", filepath.Join(root, "config/crd/bases"), "--samples", filepath.Join(root, "config/samples")}

	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	writeConfig(map[string]any{"listen_address": held.Addr().String(), "upstream_url": "http://" + freeAddr(t),
		"auto_update": map[string]any{"enabled": false}})
	began := time.Now()
	busy := start(t, "dev (port taken)", env, bin, args...)
	select {
	case <-busy.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("mss-login dev did not stop on a taken port:\n%s", busy.log.String())
	}
	out := busy.log.String()
	for _, want := range []string{
		fmt.Sprintf(`listen_address %q (from %s) is already in use by pid %d (`, held.Addr().String(), cfgFile, os.Getpid()),
		"set another listen_address in " + cfgFile + `, for example {"listen_address": "127.0.0.1:`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "starting kube-apiserver") || busy.cmd.ProcessState.ExitCode() == 0 {
		t.Errorf("went on past the taken port (exit %d):\n%s", busy.cmd.ProcessState.ExitCode(), out)
	}
	t.Logf("a taken port reported in %v", time.Since(began).Round(time.Millisecond))

	// A normal run; metrics_address unset.
	writeConfig(map[string]any{"listen_address": freeAddr(t), "upstream_url": "http://" + freeAddr(t),
		"auto_update": map[string]any{"enabled": false}})
	dev := start(t, "dev", env, bin, args...)
	eventually(t, 120*time.Second, "mss-login dev banner", func() string {
		if dev.exited() {
			t.Fatalf("mss-login dev exited:\n%s", tail(dev.log.String(), 3000))
		}
		if !strings.Contains(dev.log.String(), "mss-login dev is running") {
			return "no banner yet"
		}
		return ""
	})
	out = dev.log.String()
	step := regexp.MustCompile(`mss-login dev \[(\d)/6 (\d+m)?\d+s\] `)
	var seen []string
	for _, m := range step.FindAllStringSubmatch(out, -1) {
		if len(seen) == 0 || seen[len(seen)-1] != m[1] {
			seen = append(seen, m[1])
		}
	}
	if strings.Join(seen, "") != "123456" {
		t.Errorf("steps %v, want 1…6 in order:\n%s", seen, out)
	}
	for _, want := range []string{"configuration from " + cfgFile, "metrics on a free loopback port", "applied now", "ready\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in\n%s", want, out)
		}
	}
	if m := regexp.MustCompile(`auth server listening.*metrics=(\S+)`).FindStringSubmatch(out); m == nil || !strings.HasPrefix(m[1], "127.0.0.1:") || strings.HasSuffix(m[1], ":9090") || strings.HasSuffix(m[1], ":0") {
		t.Errorf("metrics not on a free loopback port: %v", m)
	}

	// The break-glass line of the banner, run as printed (bin/mss-login being this build).
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "admin users list") {
			line = strings.Replace(strings.TrimSpace(l), "bin/mss-login", bin, 1)
		}
	}
	if got, err := run([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, "bash", "-c", line); err != nil || !strings.Contains(got, "owner") {
		t.Errorf("the break-glass line %q: %v\n%s", line, err, got)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "mss_login_data.db")); err != nil {
		t.Errorf("the database is not at %s/mss_login_data.db: %v", dataDir, err)
	}

	_ = dev.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-dev.done:
	case <-time.After(30 * time.Second):
		t.Fatal("mss-login dev did not stop on Ctrl-C")
	}
	if want := "mss-login dev stopped: the auth server, the manager and the control plane. The data in " + dataDir + " is kept"; !strings.Contains(dev.log.String(), want) {
		t.Errorf("no %q at the end:\n%s", want, tail(dev.log.String(), 2000))
	}
}
