// Package listen opens the TCP sockets the servers serve on. When an address is already taken
// it says which setting named it, where that value came from, the file to change it in, a free
// port to try, and — on Linux, when /proc tells — which process holds the port (its name only:
// another process's command line may carry secrets).
package listen

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// Setting is the configuration key an address comes from.
type Setting struct {
	Key    string // "listen_address"
	Source string // where the value came from: "config.defaults.json", a file, "environment NAME"
	File   string // the config file to change it in
}

// InUseError is an address that another socket already listens on.
type InUseError struct {
	Setting
	Addr    string
	Holder  string // "pid 4242 (python3)", or "" when it cannot be told
	Suggest string // a free address to try, or ""
}

func (e *InUseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %q (from %s) is already in use", e.Key, e.Addr, e.Source)
	if e.Holder != "" {
		fmt.Fprintf(&b, " by %s", e.Holder)
	}
	fmt.Fprintf(&b, "; set another %s in %s", e.Key, e.File)
	if e.Suggest != "" {
		fmt.Fprintf(&b, `, for example {"%s": %q}`, e.Key, e.Suggest)
	}
	if strings.HasPrefix(e.Source, "environment ") {
		fmt.Fprintf(&b, ", or change %s", strings.TrimPrefix(e.Source, "environment "))
	}
	return b.String()
}

// Open listens on addr (TCP). A taken address gives an *InUseError; any other failure names
// the key too.
func Open(addr string, s Setting) (net.Listener, error) {
	l, err := net.Listen("tcp", addr)
	if err == nil {
		return l, nil
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		return nil, fmt.Errorf("%s %q (from %s): %w", s.Key, addr, s.Source, err)
	}
	e := &InUseError{Setting: s, Addr: addr}
	host, portText, _ := net.SplitHostPort(addr)
	if port, err := strconv.Atoi(portText); err == nil && port > 0 {
		e.Holder = Holder(port)
		e.Suggest = freeNear(host, port)
	}
	return nil, e
}

// freeNear finds a free port just above port on host, for the message.
func freeNear(host string, port int) string {
	for p := port + 1; p <= port+20 && p < 65536; p++ {
		a := net.JoinHostPort(host, strconv.Itoa(p))
		if l, err := net.Listen("tcp", a); err == nil {
			_ = l.Close()
			return a
		}
	}
	return ""
}

// Holder names the process listening on a TCP port of this network namespace: "pid 4242
// (python3)", or "" when /proc does not tell (another OS, another user's process).
func Holder(port int) string {
	var inodes []string
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		if fh, err := os.Open(f); err == nil {
			inodes = append(inodes, listeningInodes(fh, port)...)
			_ = fh.Close()
		}
	}
	if len(inodes) == 0 {
		return ""
	}
	want := map[string]bool{}
	for _, in := range inodes {
		want["socket:["+in+"]"] = true
	}
	fds, _ := filepath.Glob("/proc/[0-9]*/fd/*")
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && want[link] {
			pid := strings.Split(fd, "/")[2]
			comm, _ := os.ReadFile(filepath.Join("/proc", pid, "comm"))
			if name := strings.TrimSpace(string(comm)); name != "" {
				return fmt.Sprintf("pid %s (%s)", pid, name)
			}
			return "pid " + pid
		}
	}
	return ""
}

// listeningInodes reads a /proc/net/tcp table and returns the socket inodes in state LISTEN
// (0A) on port.
func listeningInodes(r io.Reader, port int) []string {
	var out []string
	sc := bufio.NewScanner(r)
	sc.Scan() // the header
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 10 || f[3] != "0A" {
			continue
		}
		_, hexPort, ok := strings.Cut(f[1], ":")
		if p, err := strconv.ParseUint(hexPort, 16, 16); !ok || err != nil || int(p) != port {
			continue
		}
		if f[9] != "0" {
			out = append(out, f[9])
		}
	}
	return out
}
