package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"time"
)

// IP rule actions and sources.
const (
	Allow = "allow"
	Deny  = "deny"

	SourceManual    = "manual"    // an admin's rule or ban
	SourceAutomatic = "automatic" // a ban after too many failures
	SourceResource  = "resource"  // written from an IPRule resource
)

// IPRule allows or denies a prefix. A ban is a Deny rule for a single address.
type IPRule struct {
	ID        int64
	CIDR      netip.Prefix
	Action    string
	Source    string
	OwnerRef  string
	Reason    string
	CreatedAt time.Time
	ExpiresAt time.Time // zero = permanent
}

// Active reports whether the rule applies at t.
func (r IPRule) Active(t time.Time) bool { return r.ExpiresAt.IsZero() || r.ExpiresAt.After(t) }

// AddIPRule stores r (CIDR, action and source required) and returns its id. The same
// source, owner, action and CIDR is stored once: a second add updates reason and expiry.
func (s *Store) AddIPRule(ctx context.Context, r IPRule) (int64, error) {
	if !r.CIDR.IsValid() || (r.Action != Allow && r.Action != Deny) {
		return 0, errors.New("add IP rule: a valid CIDR and an action (allow or deny) are required")
	}
	switch r.Source {
	case SourceManual, SourceAutomatic, SourceResource:
	default:
		return 0, fmt.Errorf("add IP rule: unknown source %q", r.Source)
	}
	if r.CreatedAt.IsZero() {
		r.CreatedAt = now()
	}
	var id int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		cidr := r.CIDR.Masked().String()
		res, err := s.exec(ctx, tx, `UPDATE ip_rules SET reason = ?, expires_at = ? WHERE source = ? AND owner_ref = ? AND action = ? AND cidr = ?`,
			truncate(r.Reason, 255), ms(r.ExpiresAt), r.Source, r.OwnerRef, r.Action, cidr)
		if err != nil {
			return s.wrap("add IP rule", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := s.exec(ctx, tx, `INSERT INTO ip_rules (cidr, action, source, owner_ref, reason, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				cidr, r.Action, r.Source, r.OwnerRef, truncate(r.Reason, 255), ms(r.CreatedAt), ms(r.ExpiresAt)); err != nil {
				return s.wrap("add IP rule", err)
			}
		}
		return s.wrap("add IP rule", s.queryRow(ctx, tx, `SELECT id FROM ip_rules WHERE source = ? AND owner_ref = ? AND action = ? AND cidr = ?`,
			r.Source, r.OwnerRef, r.Action, cidr).Scan(&id))
	}, TopicIPRules)
	return id, err
}

const ipRuleColumns = `id, cidr, action, source, owner_ref, reason, created_at, expires_at`

// IPRules returns every rule, expired ones included, ordered by id.
func (s *Store) IPRules(ctx context.Context) ([]IPRule, error) {
	return s.ipRules(ctx, `SELECT `+ipRuleColumns+` FROM ip_rules ORDER BY id`)
}

// IPRulesOwnedBy returns the rules written for one resource.
func (s *Store) IPRulesOwnedBy(ctx context.Context, ownerRef string) ([]IPRule, error) {
	return s.ipRules(ctx, `SELECT `+ipRuleColumns+` FROM ip_rules WHERE owner_ref = ? ORDER BY id`, ownerRef)
}

func (s *Store) ipRules(ctx context.Context, q string, args ...any) ([]IPRule, error) {
	return list(ctx, s, "list IP rules", func(sc scanner) (IPRule, error) {
		var r IPRule
		var cidr string
		var c, e sql.NullInt64
		if err := sc.Scan(&r.ID, &cidr, &r.Action, &r.Source, &r.OwnerRef, &r.Reason, &c, &e); err != nil {
			return r, err
		}
		// Stored text is the canonical prefix AddIPRule and BanIP wrote (netaddr parsed what
		// people typed): it is read strictly, not parsed again as input.
		var err error
		if r.CIDR, err = netip.ParsePrefix(cidr); err != nil {
			return r, fmt.Errorf("ip_rules row %d: bad CIDR %q", r.ID, cidr)
		}
		r.CreatedAt, r.ExpiresAt = fromMS(c), fromMS(e)
		return r, nil
	}, q, args...)
}

// DeleteIPRule removes one rule by id.
func (s *Store) DeleteIPRule(ctx context.Context, id int64) error {
	return s.deleteIPRules(ctx, `DELETE FROM ip_rules WHERE id = ?`, id)
}

// DeleteIPRulesOwnedBy removes every rule of one resource.
func (s *Store) DeleteIPRulesOwnedBy(ctx context.Context, ownerRef string) error {
	if ownerRef == "" {
		return errors.New("delete IP rules: an owner is required")
	}
	err := s.deleteIPRules(ctx, `DELETE FROM ip_rules WHERE owner_ref = ?`, ownerRef)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	return err
}

// PurgeExpiredIPRules deletes rules that expired before t and returns how many.
func (s *Store) PurgeExpiredIPRules(ctx context.Context, t time.Time) (int64, error) {
	var n int64
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM ip_rules WHERE expires_at IS NOT NULL AND expires_at <= ?`, t.UnixMilli())
		if err != nil {
			return s.wrap("purge IP rules", err)
		}
		n, _ = res.RowsAffected()
		return nil
	}, TopicIPRules)
	return n, err
}

func (s *Store) deleteIPRules(ctx context.Context, q string, args ...any) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, "delete IP rule", q, args...)
	}, TopicIPRules)
}
