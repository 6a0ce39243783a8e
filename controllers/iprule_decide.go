package controllers

import (
	"fmt"
	"net/netip"
	"sort"
	"time"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/netaddr"
	"github.com/mss-login/mss-login/internal/store"
)

// desiredIPRules turns an IPRule into rows: one per distinct network (addresses become /32 or
// /128), all with the resource's action, comment and expiry.
func desiredIPRules(spec authv1alpha1.IPRuleSpec, ref string) ([]store.IPRule, error) {
	action := store.Deny
	if spec.Action == authv1alpha1.ActionAllow {
		action = store.Allow
	}
	var expires time.Time
	if spec.ExpiresAt != nil {
		expires = spec.ExpiresAt.UTC().Truncate(time.Millisecond)
	}
	seen := map[netip.Prefix]bool{}
	var out []store.IPRule
	for _, c := range spec.CIDRs {
		p, err := netaddr.ParsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", c, err)
		}
		if seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, store.IPRule{CIDR: p, Action: action, Source: store.SourceResource, OwnerRef: ref, Reason: spec.Comment, ExpiresAt: expires})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CIDR.String() < out[j].CIDR.String() })
	return out, nil
}

// diffIPRules returns the rows to write (missing, or with another reason or expiry) and the
// ids of stored rows no longer wanted.
func diffIPRules(want, have []store.IPRule) (add []store.IPRule, remove []int64) {
	type key struct {
		cidr   netip.Prefix
		action string
	}
	stored := map[key]store.IPRule{}
	for _, h := range have {
		stored[key{h.CIDR, h.Action}] = h
	}
	wanted := map[key]bool{}
	for _, w := range want {
		k := key{w.CIDR, w.Action}
		wanted[k] = true
		h, ok := stored[k]
		if !ok || h.Reason != w.Reason || !h.ExpiresAt.Equal(w.ExpiresAt) {
			add = append(add, w)
		}
	}
	for _, h := range have {
		if !wanted[key{h.CIDR, h.Action}] {
			remove = append(remove, h.ID)
		}
	}
	return add, remove
}

// ipRuleExpired reports whether the rule has ended at now.
func ipRuleExpired(spec authv1alpha1.IPRuleSpec, now time.Time) bool {
	return spec.ExpiresAt != nil && !spec.ExpiresAt.After(now)
}
