// Command progress prints the numbered, timed step lines of `make run` (hack/run.sh) and runs
// its long `go build`s with a line every few seconds saying how far they are. Standard library
// only (internal/progress), so it builds in seconds on a machine with an empty module cache.
//
//	progress step N/TOTAL MESSAGE...
//	progress go-build N/TOTAL -what NAME -pkg PKG -o OUT [-C DIR] [-- GO BUILD FLAGS...]
//
// MSS_PROGRESS_START (Unix seconds) is the run's start, MSS_PROGRESS_PREFIX starts every line.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mss-login/mss-login/internal/progress"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "progress:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) < 2 {
		return fmt.Errorf("usage: progress step|go-build N/TOTAL ...")
	}
	n, total, err := stepOf(args[1])
	if err != nil {
		return err
	}
	s := &progress.Steps{W: os.Stderr, Total: total, Start: progress.Start(time.Now()), Prefix: os.Getenv("MSS_PROGRESS_PREFIX")}
	switch args[0] {
	case "step":
		s.Step(n, "%s", strings.Join(args[2:], " "))
		return nil
	case "go-build":
		fs := flag.NewFlagSet("go-build", flag.ContinueOnError)
		b := progress.GoBuild{}
		fs.StringVar(&b.What, "what", "", "what is built, for the progress lines")
		fs.StringVar(&b.Pkg, "pkg", "", "the package to build")
		fs.StringVar(&b.Out, "o", "", "the binary to write")
		fs.StringVar(&b.Dir, "C", "", "the module's directory")
		fs.DurationVar(&b.Every, "every", 10*time.Second, "how often a running build reports")
		if err := fs.Parse(args[2:]); err != nil {
			return err
		}
		if b.Pkg == "" || b.Out == "" {
			return fmt.Errorf("go-build needs -pkg and -o")
		}
		if b.What == "" {
			b.What = b.Pkg
		}
		b.Flags = fs.Args()
		s.Step(n, "%s", b.What)
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return b.Run(ctx, s)
	}
	return fmt.Errorf("unknown command %q (step, go-build)", args[0])
}

// stepOf parses "N/TOTAL".
func stepOf(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	n, err1 := strconv.Atoi(a)
	total, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || n > total {
		return 0, 0, fmt.Errorf("want a step as N/TOTAL, got %q", s)
	}
	return n, total, nil
}
