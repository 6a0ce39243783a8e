package store

import (
	"context"
	"database/sql"
	"errors"
	"net/netip"
	"time"
)

// Bans returns the deny rules for single addresses (automatic and manual bans) active at t.
func (s *Store) Bans(ctx context.Context, t time.Time) ([]IPRule, error) {
	all, err := s.ipRules(ctx, `SELECT `+ipRuleColumns+` FROM ip_rules WHERE action = ? AND source <> ? AND (expires_at IS NULL OR expires_at > ?) ORDER BY id`,
		Deny, SourceResource, t.UnixMilli())
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, r := range all {
		if r.CIDR.IsSingleIP() {
			out = append(out, r)
		}
	}
	return out, nil
}

// BanIP bans one address until until (zero = permanent) as an automatic ban. However many
// processes ban the same address at once, one ban exists afterwards and exactly one caller
// gets created == true; an expired ban is renewed (created again).
func (s *Store) BanIP(ctx context.Context, addr netip.Addr, at, until time.Time, reason string) (created bool, err error) {
	if !addr.IsValid() {
		return false, errors.New("ban: invalid address")
	}
	p := netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()).String()
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// A ban that exists is renewed only if it has expired, so a live ban is created once.
		c, err := s.createOrRenew(ctx, tx, "ban", s.d.insertIgnore(
			`INSERT INTO ip_rules (cidr, action, source, owner_ref, reason, created_at, expires_at) VALUES (?, ?, ?, '', ?, ?, ?)`,
			"source, owner_ref, action, cidr"),
			[]any{p, Deny, SourceAutomatic, truncate(reason, 255), at.UnixMilli(), ms(until)},
			`UPDATE ip_rules SET reason = ?, created_at = ?, expires_at = ?
			WHERE source = ? AND owner_ref = '' AND action = ? AND cidr = ? AND expires_at IS NOT NULL AND expires_at <= ?`,
			truncate(reason, 255), at.UnixMilli(), ms(until), SourceAutomatic, Deny, p, at.UnixMilli())
		created = c
		return err
	}, TopicIPRules)
	return created, err
}

// Unban lifts every automatic and manual ban of one address and forgets its failed attempts: a
// lifted ban starts from a clean count, not one failure away from the next ban.
func (s *Store) Unban(ctx context.Context, addr netip.Addr) error {
	p := netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()).String()
	err := s.deleteIPRules(ctx, `DELETE FROM ip_rules WHERE action = ? AND source <> ? AND cidr = ?`, Deny, SourceResource, p)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	if rerr := s.ResetFailures(ctx, ScopeIP, addr.Unmap().String()); rerr != nil {
		return rerr
	}
	return err
}
