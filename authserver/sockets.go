package authserver

import (
	"bufio"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/mss-login/mss-login/authserver/policy"
)

// socket is an upgraded connection proxied to the upstream, with the identity that opened it.
type socket struct {
	conn   net.Conn
	id     *identity
	ip     netip.Addr
	device string
	method string
	path   policy.Path
	once   sync.Once
}

// check is the decision input of the upgrade, at now: a socket is re-decided exactly as the
// upgrade that opened it (it passed the origin check then).
func (s *socket) check(now time.Time) check {
	c := check{ip: s.ip, device: s.device, method: s.method, upgrade: true, sameOrigin: true, now: now}
	if s.id != nil {
		c.id, c.hasID = *s.id, true
	}
	return c
}

func (s *socket) close() { s.once.Do(func() { s.conn.Close() }) }

// sockets tracks open WebSockets so that revoking a session, disabling a user, banning an
// address or removing a permission closes them (the original left them open).
type sockets struct {
	mu   sync.Mutex
	open map[*socket]struct{}
	m    *metrics
}

func newSockets(m *metrics) *sockets { return &sockets{open: map[*socket]struct{}{}, m: m} }

func (ss *sockets) add(s *socket) {
	ss.mu.Lock()
	ss.open[s] = struct{}{}
	ss.mu.Unlock()
	ss.m.sockets.Inc()
}

func (ss *sockets) remove(s *socket) {
	ss.mu.Lock()
	_, ok := ss.open[s]
	delete(ss.open, s)
	ss.mu.Unlock()
	if ok {
		ss.m.sockets.Dec()
	}
}

// sweep closes every socket for which stillValid is false.
func (ss *sockets) sweep(stillValid func(*socket) bool) {
	ss.mu.Lock()
	list := make([]*socket, 0, len(ss.open))
	for s := range ss.open {
		list = append(list, s)
	}
	ss.mu.Unlock()
	for _, s := range list {
		if !stillValid(s) {
			s.close()
			ss.remove(s)
		}
	}
}

// hijackTracker wraps the ResponseWriter of an upgrade so that the connection the reverse proxy
// hijacks is registered, and unregistered when the proxy is done with it.
type hijackTracker struct {
	http.ResponseWriter
	reg *sockets
	s   *socket
}

func (h *hijackTracker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(h.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	h.s.conn = conn
	h.reg.add(h.s)
	return conn, rw, nil
}

func (h *hijackTracker) Unwrap() http.ResponseWriter { return h.ResponseWriter }
