package progress

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// GoBuild is one `go build` with progress: the modules are downloaded first (`go mod download
// -x`, counted), then the packages that need compiling are counted (`go list -deps`, those not
// in the build cache), then `go build -v` runs and a line every `every` says how many of them
// are done. Dir is the module's directory ("" for the current one), Pkg the package to build,
// Flags go build's flags (the same ones go list gets, so that the count matches), Out the
// binary. Errors of the go commands reach s.W as they are.
type GoBuild struct {
	Dir, What, Pkg, Out string
	Flags               []string
	Every               time.Duration
}

// Run runs the build under the current step of s.
func (b GoBuild) Run(ctx context.Context, s *Steps) error {
	every := b.Every
	if every <= 0 {
		every = 10 * time.Second
	}
	began := s.now()
	mods := &Counter{Out: s.W}
	err := b.watch(ctx, s, every, mods, func(n int) string {
		return fmt.Sprintf("%s: downloading Go modules, %d fetched so far", b.What, n)
	}, "mod", "download", "-x")
	mods.Flush()
	if err != nil {
		return fmt.Errorf("go mod download: %w", err)
	}
	if n := mods.Count(); n > 0 {
		s.Printf("%s: %s downloaded in %s", b.What, plural(n, "Go module"), Elapsed(s.now().Sub(began)))
	}

	total, err := b.stale(ctx)
	if err != nil {
		return err
	}
	if total > 0 {
		s.Printf("%s: compiling %s (the build cache has the rest)", b.What, plural(total, "package"))
	}
	pkgs := &Counter{Out: s.W}
	args := append([]string{"build", "-v"}, b.Flags...)
	args = append(args, "-o", b.Out, b.Pkg)
	err = b.watch(ctx, s, every, pkgs, func(n int) string {
		return fmt.Sprintf("%s: %s compiled", b.What, Of(n, total, "packages"))
	}, args...)
	pkgs.Flush()
	if err != nil {
		return fmt.Errorf("go build %s: %w", b.Pkg, err)
	}
	s.Printf("%s: built in %s", b.What, Elapsed(s.now().Sub(began)))
	return nil
}

// stale counts the packages go build will compile: the dependencies not in the build cache.
func (b GoBuild) stale(ctx context.Context) (int, error) {
	args := append([]string{"list", "-deps", "-f", "{{if .Stale}}{{.ImportPath}}{{end}}"}, b.Flags...)
	args = append(args, b.Pkg)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.Dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return 0, fmt.Errorf("go list %s: %w: %s", b.Pkg, err, strings.TrimSpace(stderr.String()))
	}
	return len(strings.Fields(string(out))), nil
}

// watch runs `go args…` with its output counted by c, printing msg(count) every `every`.
func (b GoBuild) watch(ctx context.Context, s *Steps, every time.Duration, c *Counter, msg func(int) string, args ...string) error {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = b.Dir
	cmd.Stdout, cmd.Stderr = c, c
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			s.Printf("%s", msg(c.Count()))
		}
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}
