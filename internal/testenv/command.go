package testenv

import (
	"bytes"
	"os/exec"
	"strings"
)

// Run runs a command with exactly env (nil: this process's environment) and returns its
// standard output; on failure the error holds the standard error.
func Run(env []string, name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), &CmdError{Err: err, Stderr: errb.String()}
	}
	return out.String(), nil
}

// CmdError is a failed command with what it wrote to standard error.
type CmdError struct {
	Err    error
	Stderr string
}

func (e *CmdError) Error() string { return e.Err.Error() + ": " + strings.TrimSpace(e.Stderr) }

func (e *CmdError) Unwrap() error { return e.Err }
