package progress

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 1400 * time.Millisecond: "1s", 59 * time.Second: "59s", 65 * time.Second: "1m05s",
		59*time.Minute + 59*time.Second: "59m59s", 62 * time.Minute: "1h02m",
	} {
		if got := Elapsed(d); got != want {
			t.Errorf("Elapsed(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestStepsLines(t *testing.T) {
	var buf bytes.Buffer
	start := time.Unix(1000, 0)
	now := start
	s := &Steps{W: &buf, Total: 3, Start: start, Now: func() time.Time { return now }, Prefix: "make run"}
	s.Next("building %s", "bin/mss-login")
	now = now.Add(245 * time.Second)
	s.Printf("812/871 packages")
	s.Step(3, "starting")
	want := "make run [1/3 0s] building bin/mss-login\nmake run [1/3 4m05s] 812/871 packages\nmake run [3/3 4m05s] starting\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestStartFromEnvironment(t *testing.T) {
	now := time.Unix(2000, 0)
	for env, want := range map[string]int64{"": 2000, "1500": 1500, "3000": 2000, "x": 2000, "-5": 2000} {
		t.Setenv(StartEnv, env)
		if got := Start(now).Unix(); got != want {
			t.Errorf("%s=%q: start %d, want %d", StartEnv, env, got, want)
		}
	}
}

// The lines of `go build -v` and `go mod download -x` are counted; errors pass through.
func TestCounter(t *testing.T) {
	var out bytes.Buffer
	c := &Counter{Out: &out}
	input := "internal/goarch\nk8s.io/api/core/v1\ngithub.com/Azure/go-ansiterm\n" +
		"# get https://proxy.golang.org/cel.dev/expr/@v/v0.25.1.zip\n" +
		"# get https://proxy.golang.org/cel.dev/expr/@v/v0.25.1.zip: 200 OK (0.118s)\n" +
		"# get https://proxy.golang.org/cel.dev/expr/@v/v0.25.1.mod: 200 OK (0.1s)\n" +
		"# example.com/broken\n./x.go:3:1: syntax error: non-declaration statement outside function body\n" +
		"go: downloading example.com/m v1.0.0\n\ncommand-line-arguments"
	// Written in odd pieces, as a pipe delivers them.
	for i := 0; i < len(input); i += 7 {
		_, _ = c.Write([]byte(input[i:min(i+7, len(input))]))
	}
	c.Flush()
	if c.Count() != 5 {
		t.Errorf("counted %d, want 5 (3 packages, 1 archive, command-line-arguments)", c.Count())
	}
	want := "# example.com/broken\n./x.go:3:1: syntax error: non-declaration statement outside function body\ngo: downloading example.com/m v1.0.0\n"
	if out.String() != want {
		t.Errorf("passed through\n%q\nwant\n%q", out.String(), want)
	}
}

func TestOf(t *testing.T) {
	for _, c := range []struct {
		n, total int
		want     string
	}{{3, 0, "3 packages"}, {0, 4, "0/4 packages, 0%"}, {412, 871, "412/871 packages, 47%"}, {9, 4, "4/4 packages, 100%"}} {
		if got := Of(c.n, c.total, "packages"); got != c.want {
			t.Errorf("Of(%d, %d) = %q, want %q", c.n, c.total, got, c.want)
		}
	}
}

// A real `go build` of a small module: the count of packages to compile is known first, every
// one is counted, the binary is written; a broken package fails with the compiler's message.
func TestGoBuild(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh value makes both packages new to the build cache.
	unique := strconv.FormatInt(time.Now().UnixNano(), 10)
	write("go.mod", "module example.com/progresstest\n\ngo 1.22\n")
	write("lib/lib.go", "package lib\n\nconst V = \""+unique+"\"\n")
	write("main.go", "package main\n\nimport \"example.com/progresstest/lib\"\n\nfunc main() { println(lib.V) }\n")
	t.Setenv("GOFLAGS", "-mod=mod")
	var buf bytes.Buffer
	s := &Steps{W: &buf, Total: 2, Start: time.Now()}
	s.Next("building")
	b := GoBuild{Dir: dir, What: "test binary", Pkg: ".", Out: filepath.Join(dir, "bin", "t"), Every: 50 * time.Millisecond}
	if err := b.Run(context.Background(), s); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if _, err := os.Stat(b.Out); err != nil {
		t.Fatalf("no binary: %v", err)
	}
	for _, want := range []string{"] test binary: compiling 2 packages", "test binary: built in"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("no %q in\n%s", want, buf.String())
		}
	}

	write("lib/lib.go", "package lib\n\nconst V = \n")
	buf.Reset()
	err := b.Run(context.Background(), s)
	if err == nil || !strings.Contains(buf.String(), "lib/lib.go:") {
		t.Errorf("a broken package: err %v, output\n%s", err, buf.String())
	}
}
