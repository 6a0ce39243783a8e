package listen

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
)

func TestListeningInodes(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 51234 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:2383 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 61234 1 0000000000000000 100 0 0 10 0
   3: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 0 1 0000000000000000 100 0 0 10 0
   4: garbage
`
	if got := listeningInodes(strings.NewReader(table), 8080); !slices.Equal(got, []string{"41234"}) {
		t.Errorf("port 8080: %v, want [41234] (not the established connection, not inode 0)", got)
	}
	if got := listeningInodes(strings.NewReader(table), 9090); len(got) != 0 {
		t.Errorf("port 9090: %v", got)
	}
}

// A port this test holds: the error names the key, its source, the file, this process and a
// free port to try; the suggestion is really free.
func TestOpenInUse(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	s := Setting{Key: "listen_address", Source: "/srv/data/config.json", File: "/srv/data/config.json"}
	_, err = Open(addr, s)
	var inUse *InUseError
	if !errors.As(err, &inUse) {
		t.Fatalf("err %v, want an InUseError", err)
	}
	msg := err.Error()
	for _, want := range []string{`listen_address "` + addr + `" (from /srv/data/config.json) is already in use`, "set another listen_address in /srv/data/config.json", `for example {"listen_address": "127.0.0.1:`} {
		if !strings.Contains(msg, want) {
			t.Errorf("no %q in %q", want, msg)
		}
	}
	if runtime.GOOS == "linux" {
		if want := fmt.Sprintf("by pid %d (", os.Getpid()); !strings.Contains(msg, want) {
			t.Errorf("the holder is not named (%q) in %q", want, msg)
		}
	}
	l, err := net.Listen("tcp", inUse.Suggest)
	if err != nil {
		t.Fatalf("the suggested %s is not free: %v", inUse.Suggest, err)
	}
	_ = l.Close()

	env := Setting{Key: "metrics_address", Source: "environment METRICS_ADDRESS", File: "config.json"}
	if _, err := Open(addr, env); err == nil || !strings.HasSuffix(err.Error(), ", or change METRICS_ADDRESS") {
		t.Errorf("from the environment: %v", err)
	}
	if _, err := Open("256.0.0.1:1", s); err == nil || errors.As(err, &inUse) || !strings.Contains(err.Error(), "listen_address") {
		t.Errorf("a bad address: %v", err)
	}
}
