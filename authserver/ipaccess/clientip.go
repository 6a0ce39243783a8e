// Package ipaccess decides who the client is on the network and whether it may come in: the
// client IP behind trusted proxies, IP allow/deny rules, bans, device locks, the security.json
// break-glass and the login cooldowns. Everything here is a pure function of its inputs.
package ipaccess

import (
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client address of a request. Forwarded headers are believed only when
// they arrive from a trusted proxy (none by default), read right to left.
type Resolver struct {
	Trusted []netip.Prefix
	// Cloudflare honours CF-Connecting-IP / True-Client-IP, from a trusted peer only.
	Cloudflare bool
}

// Trusts reports whether a is one of the trusted proxies.
func (r Resolver) Trusts(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// ClientIP returns the address of the client that sent h through the socket peer.
func (r Resolver) ClientIP(peer netip.Addr, h http.Header) netip.Addr {
	peer = peer.Unmap()
	if !r.Trusts(peer) {
		return peer
	}
	if r.Cloudflare {
		for _, name := range []string{"CF-Connecting-IP", "True-Client-IP"} {
			if a, err := netip.ParseAddr(strings.TrimSpace(h.Get(name))); err == nil {
				return a.Unmap()
			}
		}
	}
	// Right to left: every hop added by a trusted proxy is believed, the first untrusted one is
	// the client. Anything the client put further left is its own claim and is ignored.
	cur := peer
	values := h.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		hops := strings.Split(values[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, err := netip.ParseAddr(strings.TrimSpace(hops[j]))
			if err != nil {
				return cur // garbage from an untrusted writer: stop at the last trusted hop
			}
			cur = a.Unmap()
			if !r.Trusts(cur) {
				return cur
			}
		}
	}
	return cur
}

// HTTPS reports whether the client's connection is HTTPS: TLS to us, or a trusted proxy says so.
func (r Resolver) HTTPS(req *http.Request, peer netip.Addr) bool {
	if req.TLS != nil {
		return true
	}
	if !r.Trusts(peer) {
		return false
	}
	if strings.EqualFold(req.Header.Get("X-Forwarded-Proto"), "https") {
		return true
	}
	return r.Cloudflare && strings.Contains(req.Header.Get("CF-Visitor"), `"https"`)
}

// PeerAddr parses http.Request.RemoteAddr.
func PeerAddr(remoteAddr string) netip.Addr {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
