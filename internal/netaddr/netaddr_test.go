package netaddr

import (
	"strings"
	"testing"
)

func TestParsePrefix(t *testing.T) {
	for _, c := range []struct {
		in, want, err string // want "" = refused with an error containing err
	}{
		{in: "1.2.3.4", want: "1.2.3.4/32"},
		{in: "  192.0.2.7\t", want: "192.0.2.7/32"},
		{in: "10.9.8.7/16", want: "10.9.0.0/16"},
		{in: "10.0.0.0/8", want: "10.0.0.0/8"},
		{in: "0.0.0.0/0", want: "0.0.0.0/0"},
		{in: "::1", want: "::1/128"},
		{in: "2001:db8::/48", want: "2001:db8::/48"},
		{in: "2001:db8::1/32", want: "2001:db8::/32"},
		{in: "::ffff:1.2.3.4", want: "1.2.3.4/32"},
		{in: "fe80::1%en0", err: "IPv6 zones are not allowed"},
		{in: "fe80::1%eth0", err: "IPv6 zones are not allowed"},
		{in: "fe80::1%eth0/64", err: "not a valid CIDR"},
		{in: "1.2.3.4/40", err: "not a valid CIDR"},
		{in: "10.0.0.300/8", err: "not a valid CIDR"},
		{in: "10.0.0.0/", err: "not a valid CIDR"},
		{in: "bad", err: "not a valid IP address or CIDR"},
		{in: "1.2.3", err: "not a valid IP address or CIDR"},
		{in: "localhost", err: "not a valid IP address or CIDR"},
		{in: "", err: "not a valid IP address or CIDR"},
	} {
		p, err := ParsePrefix(c.in)
		if c.want == "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q = %v, %v; want an error saying %q", c.in, p, err, c.err)
			}
			continue
		}
		if err != nil || p.String() != c.want {
			t.Errorf("%q = %v, %v; want %s", c.in, p, err, c.want)
		}
	}
}
