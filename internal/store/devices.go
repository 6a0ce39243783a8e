package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

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
