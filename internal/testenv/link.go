package testenv

import (
	"io"
	"net"
	"strconv"
	"sync"
	"testing"

	"github.com/mss-login/mss-login/internal/store"
)

// Link is a TCP forwarder on loopback between a store and its database server that a test can
// cut (every connection closed, new ones refused) and restore: a database outage that ends.
type Link struct {
	target string
	ln     net.Listener
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
}

// ThroughLink returns o (a PostgreSQL or MySQL database) reached through a new Link.
func ThroughLink(t testing.TB, o store.Options) (store.Options, *Link) {
	t.Helper()
	if o.Backend == store.SQLite {
		t.Fatal("ThroughLink: SQLite has no connection to cut")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &Link{target: net.JoinHostPort(o.Host, strconv.Itoa(o.Port)), ln: ln, conns: map[net.Conn]bool{}}
	t.Cleanup(func() { ln.Close(); l.Cut() })
	go l.serve()
	o.Host, o.Port = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	return o, l
}

func (l *Link) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		l.mu.Lock()
		if l.cut {
			l.mu.Unlock()
			c.Close()
			continue
		}
		up, err := net.Dial("tcp", l.target)
		if err != nil {
			l.mu.Unlock()
			c.Close()
			continue
		}
		l.conns[c], l.conns[up] = true, true
		l.mu.Unlock()
		go l.pipe(c, up)
		go l.pipe(up, c)
	}
}

func (l *Link) pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	l.mu.Lock()
	delete(l.conns, dst)
	delete(l.conns, src)
	l.mu.Unlock()
}

// Cut closes every connection and refuses new ones until Restore.
func (l *Link) Cut() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.cut = true
	for c := range l.conns {
		c.Close()
	}
}

// Restore lets connections through again.
func (l *Link) Restore() {
	l.mu.Lock()
	l.cut = false
	l.mu.Unlock()
}
