// Package progress prints what a long first run is doing and how far it is: numbered steps with
// the time since the run began ("[2/3 4m05s] building …"), and, for a `go build -v` or
// `go mod download -x` that runs for minutes, a line every few seconds with the packages
// compiled or the modules fetched so far. `make run` (hack/run.sh, through hack/progress) and
// `mss-login dev` share it, and the clock: MSS_PROGRESS_START carries the run's start across
// processes.
//
// It imports nothing outside the standard library, so that hack/progress builds in seconds on
// a machine whose Go module cache is still empty.
package progress

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// StartEnv names the variable holding the run's start (Unix seconds), set by the first step.
const StartEnv = "MSS_PROGRESS_START"

// Start is the run's start: $MSS_PROGRESS_START when set and sane, else now.
func Start(now time.Time) time.Time {
	if s, err := strconv.ParseInt(os.Getenv(StartEnv), 10, 64); err == nil && s > 0 && s <= now.Unix() {
		return time.Unix(s, 0)
	}
	return now
}

// Elapsed formats a duration as a person reads it on a progress line: 7s, 4m05s, 1h02m.
func Elapsed(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}

// Steps prints numbered steps of a run of Total steps to W, each with the time since Start.
type Steps struct {
	W     io.Writer
	Total int
	Start time.Time
	Now   func() time.Time // nil means time.Now
	// Prefix starts every line ("make run", "mss-login dev").
	Prefix string

	mu sync.Mutex
	n  int
}

func (s *Steps) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// Step starts step n (counted from 1) and prints its line.
func (s *Steps) Step(n int, format string, args ...any) {
	s.mu.Lock()
	s.n = n
	s.mu.Unlock()
	s.Printf(format, args...)
}

// Next starts the step after the current one.
func (s *Steps) Next(format string, args ...any) {
	s.mu.Lock()
	s.n++
	s.mu.Unlock()
	s.Printf(format, args...)
}

// Printf prints a line under the current step: "<prefix> [n/total elapsed] message".
func (s *Steps) Printf(format string, args ...any) {
	s.mu.Lock()
	n := s.n
	s.mu.Unlock()
	fmt.Fprintln(s.W, s.Line(n, fmt.Sprintf(format, args...)))
}

// Line is the text of a progress line of step n.
func (s *Steps) Line(n int, msg string) string {
	tag := fmt.Sprintf("[%d/%d %s]", n, s.Total, Elapsed(s.now().Sub(s.Start)))
	if s.Prefix != "" {
		tag = s.Prefix + " " + tag
	}
	return tag + " " + msg
}

// Counter reads the output of a go command line by line: `go build -v` names each package as it
// is compiled, `go mod download -x` names each module archive it fetched; everything else
// (compiler errors, "# pkg" headers, warnings) is passed through to Out at once.
type Counter struct {
	Out io.Writer

	mu    sync.Mutex
	count int
	buf   []byte
}

// Count is how many packages or modules the output has named so far.
func (c *Counter) Count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// Write implements io.Writer for a command's standard error.
func (c *Counter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	for {
		i := strings.IndexByte(string(c.buf), '\n')
		if i < 0 {
			break
		}
		line := string(c.buf[:i])
		c.buf = c.buf[i+1:]
		c.line(line)
	}
	return len(p), nil
}

// Flush passes on a last line without a newline.
func (c *Counter) Flush() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.buf) > 0 {
		c.line(string(c.buf))
		c.buf = nil
	}
}

func (c *Counter) line(line string) {
	switch kind(line) {
	case counted:
		c.count++
	case quiet:
	default:
		if c.Out != nil {
			fmt.Fprintln(c.Out, line)
		}
	}
}

type lineKind int

const (
	other lineKind = iota
	counted
	quiet
)

// kind sorts a line of go's output: a bare import path (`go build -v`) or a fetched module
// archive (`go mod download -x`) is counted, the rest of -x's trace is dropped, anything else
// is for a human.
func kind(line string) lineKind {
	t := strings.TrimSpace(line)
	switch {
	case t == "", t == "go: no module dependencies to download":
		return quiet
	case strings.HasPrefix(t, "# get "):
		if strings.Contains(t, ".zip: 200 ") { // the answer line of a fetched archive
			return counted
		}
		return quiet
	case isImportPath(t):
		return counted
	}
	return other
}

// isImportPath reports whether s looks like one package path as `go build -v` prints it:
// no spaces, no colon (file positions), no leading '#' (a package header before errors).
func isImportPath(s string) bool {
	if strings.ContainsAny(s, " \t:#") {
		return false
	}
	for _, r := range s {
		ok := r == '/' || r == '.' || r == '-' || r == '_' || r == '~' || r == '+' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if !ok {
			return false
		}
	}
	return true
}

// Of formats a count against a total ("412/1180 packages, 35%"), or alone when the total is
// unknown ("412 packages").
func Of(n, total int, unit string) string {
	if total <= 0 {
		return fmt.Sprintf("%d %s", n, unit)
	}
	if n > total {
		n = total
	}
	return fmt.Sprintf("%d/%d %s, %d%%", n, total, unit, n*100/total)
}
