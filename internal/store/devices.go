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
		c, err := s.createOrRenew(ctx, tx, "lock device", s.d.insertIgnore(
			`INSERT INTO locked_devices (device_id, reason, created_at, expires_at) VALUES (?, ?, ?, ?)`, "device_id"),
			[]any{deviceID, truncate(reason, 255), at.UnixMilli(), ms(until)},
			`UPDATE locked_devices SET reason = ?, created_at = ?, expires_at = ?
			WHERE device_id = ? AND expires_at IS NOT NULL AND expires_at <= ?`,
			truncate(reason, 255), at.UnixMilli(), ms(until), deviceID, at.UnixMilli())
		created = c
		return err
	}, TopicDevices)
	return created, err
}

// UnlockDevice lifts a device lock.
func (s *Store) UnlockDevice(ctx context.Context, deviceID string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		return s.execOne(ctx, tx, "unlock device", `DELETE FROM locked_devices WHERE device_id = ?`, deviceID)
	}, TopicDevices)
}

// LockedDevices returns the device locks active at t.
func (s *Store) LockedDevices(ctx context.Context, t time.Time) ([]LockedDevice, error) {
	return list(ctx, s, "list locked devices", func(sc scanner) (LockedDevice, error) {
		var d LockedDevice
		var c, e sql.NullInt64
		err := sc.Scan(&d.DeviceID, &d.Reason, &c, &e)
		d.CreatedAt, d.ExpiresAt = fromMS(c), fromMS(e)
		return d, err
	}, `SELECT device_id, reason, created_at, expires_at FROM locked_devices
		WHERE expires_at IS NULL OR expires_at > ? ORDER BY device_id`, t.UnixMilli())
}
