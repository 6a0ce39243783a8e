package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/netip"
	"strings"
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

// ParsePrefix accepts an IP or a CIDR, v4 or v6, and returns it masked and canonical.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

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

func (s *Store) ipRules(ctx context.Context, q string, args ...any) ([]IPRule, error) {
	rows, err := s.query(ctx, s.db, q, args...)
	if err != nil {
		return nil, s.wrap("list IP rules", err)
	}
	defer rows.Close()
	var out []IPRule
	for rows.Next() {
		var r IPRule
		var cidr string
		var c, e sql.NullInt64
		if err := rows.Scan(&r.ID, &cidr, &r.Action, &r.Source, &r.OwnerRef, &r.Reason, &c, &e); err != nil {
			return nil, s.wrap("list IP rules", err)
		}
		if r.CIDR, err = netip.ParsePrefix(cidr); err != nil {
			return nil, fmt.Errorf("ip_rules row %d: bad CIDR %q", r.ID, cidr)
		}
		r.CreatedAt, r.ExpiresAt = fromMS(c), fromMS(e)
		out = append(out, r)
	}
	return out, s.wrap("list IP rules", rows.Err())
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
		res, err := s.exec(ctx, tx, q, args...)
		if err != nil {
			return s.wrap("delete IP rule", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	}, TopicIPRules)
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
		res, err := s.exec(ctx, tx, s.d.insertIgnore(
			`INSERT INTO ip_rules (cidr, action, source, owner_ref, reason, created_at, expires_at) VALUES (?, ?, ?, '', ?, ?, ?)`,
			"source, owner_ref, action, cidr"),
			p, Deny, SourceAutomatic, truncate(reason, 255), at.UnixMilli(), ms(until))
		if err != nil {
			return s.wrap("ban", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			created = true
			return nil
		}
		// A ban exists: renew it only if it has expired, so a live ban is created once.
		res, err = s.exec(ctx, tx, `UPDATE ip_rules SET reason = ?, created_at = ?, expires_at = ?
			WHERE source = ? AND owner_ref = '' AND action = ? AND cidr = ? AND expires_at IS NOT NULL AND expires_at <= ?`,
			truncate(reason, 255), at.UnixMilli(), ms(until), SourceAutomatic, Deny, p, at.UnixMilli())
		if err != nil {
			return s.wrap("ban", err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
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

// LockedDevice is a device id refused until ExpiresAt (zero = until unlocked).
type LockedDevice struct {
	DeviceID  string
	Reason    string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// LockDevice locks a device; like BanIP, created is true for one caller per live lock.
func (s *Store) LockDevice(ctx context.Context, deviceID string, at, until time.Time, reason string) (created bool, err error) {
	if deviceID == "" || len(deviceID) > 191 {
		return false, errors.New("lock device: the device id must be 1 to 191 characters")
	}
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, s.d.insertIgnore(
			`INSERT INTO locked_devices (device_id, reason, created_at, expires_at) VALUES (?, ?, ?, ?)`, "device_id"),
			deviceID, truncate(reason, 255), at.UnixMilli(), ms(until))
		if err != nil {
			return s.wrap("lock device", err)
		}
		if n, _ := res.RowsAffected(); n == 1 {
			created = true
			return nil
		}
		res, err = s.exec(ctx, tx, `UPDATE locked_devices SET reason = ?, created_at = ?, expires_at = ?
			WHERE device_id = ? AND expires_at IS NOT NULL AND expires_at <= ?`,
			truncate(reason, 255), at.UnixMilli(), ms(until), deviceID, at.UnixMilli())
		if err != nil {
			return s.wrap("lock device", err)
		}
		n, _ := res.RowsAffected()
		created = n == 1
		return nil
	}, TopicDevices)
	return created, err
}

// UnlockDevice lifts a device lock.
func (s *Store) UnlockDevice(ctx context.Context, deviceID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := s.exec(ctx, tx, `DELETE FROM locked_devices WHERE device_id = ?`, deviceID)
		if err != nil {
			return s.wrap("unlock device", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return ErrNotFound
		}
		return nil
	}, TopicDevices)
}

// LockedDevices returns the device locks active at t.
func (s *Store) LockedDevices(ctx context.Context, t time.Time) ([]LockedDevice, error) {
	rows, err := s.query(ctx, s.db, `SELECT device_id, reason, created_at, expires_at FROM locked_devices
		WHERE expires_at IS NULL OR expires_at > ? ORDER BY device_id`, t.UnixMilli())
	if err != nil {
		return nil, s.wrap("list locked devices", err)
	}
	defer rows.Close()
	var out []LockedDevice
	for rows.Next() {
		var d LockedDevice
		var c, e sql.NullInt64
		if err := rows.Scan(&d.DeviceID, &d.Reason, &c, &e); err != nil {
			return nil, s.wrap("list locked devices", err)
		}
		d.CreatedAt, d.ExpiresAt = fromMS(c), fromMS(e)
		out = append(out, d)
	}
	return out, s.wrap("list locked devices", rows.Err())
}
