// Package netaddr is the one parser of the IP addresses and networks that people write: in the
// configuration (trusted_proxies, local_network_cidrs, recovery_mode_hosts), in IPRule
// resources, in the console's address rules, in security.json's unlock_ips and in an imported
// allow list. All of them accept the same text and store the same canonical prefix.
package netaddr

import (
	"errors"
	"net/netip"
	"strings"
)

// ParsePrefix parses an IP address (a /32 or /128 prefix) or a CIDR, IPv4 or IPv6, around
// which space is ignored. The prefix is masked (10.1.2.3/8 becomes 10.0.0.0/8) and an
// IPv4-mapped IPv6 address becomes IPv4. IPv6 zones (fe80::1%eth0) are refused in both forms:
// a zone names one host's interface, which no rule on an address can match. The errors do not
// repeat s: callers name the entry.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, errors.New("not a valid CIDR")
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("not a valid IP address or CIDR")
	}
	if a.Zone() != "" {
		return netip.Prefix{}, errors.New("IPv6 zones are not allowed")
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}
