package ipaccess

import (
	"net/netip"
	"sort"
	"time"
)

// Rule is one allow or deny entry, or a ban (Ban: a deny counted as a lockout).
type Rule struct {
	Prefix    netip.Prefix
	Allow     bool
	Ban       bool
	ExpiresAt time.Time // zero = permanent
}

// RuleSet answers "which rules match this address" in time that depends on the number of
// distinct prefix lengths (at most 33 for IPv4, 129 for IPv6), not on the number of rules:
// one map per prefix length, probed with the address masked to that length.
type RuleSet struct {
	lengths4, lengths6 []int // distinct prefix lengths present, longest first
	byPrefix           map[netip.Prefix][]Rule
	allowList          bool // any allow rule switches on allow-list mode (as the original)
}

// NewRuleSet indexes rules.
func NewRuleSet(rules []Rule) *RuleSet {
	s := &RuleSet{byPrefix: make(map[netip.Prefix][]Rule, len(rules))}
	seen4, seen6 := map[int]bool{}, map[int]bool{}
	for _, r := range rules {
		p := r.Prefix.Masked()
		if !p.IsValid() {
			continue
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
		}
		r.Prefix = p
		s.byPrefix[p] = append(s.byPrefix[p], r)
		if r.Allow {
			s.allowList = true
		}
		if p.Addr().Is4() {
			seen4[p.Bits()] = true
		} else {
			seen6[p.Bits()] = true
		}
	}
	s.lengths4, s.lengths6 = sortedDesc(seen4), sortedDesc(seen6)
	return s
}

func sortedDesc(m map[int]bool) []int {
	out := make([]int, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Sort(sort.Reverse(sort.IntSlice(out)))
	return out
}

// AllowList reports whether allow-list mode is on.
func (s *RuleSet) AllowList() bool { return s != nil && s.allowList }

// Match calls f for each rule that contains a and is active at now, until f returns false.
func (s *RuleSet) Match(a netip.Addr, now time.Time, f func(Rule) bool) {
	if s == nil || !a.IsValid() {
		return
	}
	a = a.Unmap()
	lengths := s.lengths6
	if a.Is4() {
		lengths = s.lengths4
	}
	for _, bits := range lengths {
		p, err := a.Prefix(bits)
		if err != nil {
			continue
		}
		for _, r := range s.byPrefix[p] {
			if r.ExpiresAt.IsZero() || r.ExpiresAt.After(now) {
				if !f(r) {
					return
				}
			}
		}
	}
}
