package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// Setting returns an app setting stored in plain text; ok is false when unset.
func (s *Store) Setting(ctx context.Context, name string) (value string, ok bool, err error) {
	value, enc, ok, err := s.readSetting(ctx, name)
	if err != nil || !ok {
		return "", false, err
	}
	if enc {
		return "", false, fmt.Errorf("setting %q is encrypted: read it with SecretSetting", name)
	}
	return value, true, nil
}

// SetSetting stores an app setting in plain text.
func (s *Store) SetSetting(ctx context.Context, name, value string) error {
	return s.putSetting(ctx, name, value, false)
}

// SecretSetting returns an app setting stored encrypted (S3 keys, tokens); ok is false when unset.
func (s *Store) SecretSetting(ctx context.Context, name string) (value string, ok bool, err error) {
	sealed, enc, ok, err := s.readSetting(ctx, name)
	if err != nil || !ok {
		return "", false, err
	}
	if !enc {
		return "", false, fmt.Errorf("setting %q is not encrypted: read it with Setting", name)
	}
	if s.fields == nil {
		return "", false, ErrNoSecret
	}
	v, err := s.fields.Open(sealed, settingContext(name))
	return v, err == nil, err
}

// SetSecretSetting stores an app setting encrypted with the field key.
func (s *Store) SetSecretSetting(ctx context.Context, name, value string) error {
	if s.fields == nil {
		return ErrNoSecret
	}
	sealed, err := s.fields.Seal(value, settingContext(name))
	if err != nil {
		return err
	}
	return s.putSetting(ctx, name, sealed, true)
}

// readSetting returns a setting's stored value and whether it is sealed; ok is false when unset.
func (s *Store) readSetting(ctx context.Context, name string) (value string, encrypted, ok bool, err error) {
	err = s.queryRow(ctx, s.db, `SELECT value, encrypted FROM app_settings WHERE name = ?`, name).Scan(&value, &encrypted)
	if errors.Is(err, sql.ErrNoRows) {
		return "", false, false, nil
	}
	if err != nil {
		return "", false, false, s.wrap("read setting", err)
	}
	return value, encrypted, true, nil
}

func settingContext(name string) string { return "app_settings:" + name }

func (s *Store) putSetting(ctx context.Context, name, value string, encrypted bool) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		t := now().UnixMilli()
		res, err := s.exec(ctx, tx, `UPDATE app_settings SET value = ?, encrypted = ?, updated_at = ? WHERE name = ?`, value, encrypted, t, name)
		if err != nil {
			return s.wrap("write setting", err)
		}
		if n, _ := res.RowsAffected(); n > 0 {
			return nil
		}
		_, err = s.exec(ctx, tx, `INSERT INTO app_settings (name, value, encrypted, updated_at) VALUES (?, ?, ?, ?)`, name, value, encrypted, t)
		return s.wrap("write setting", err)
	}, TopicSettings)
}

// SettingNames lists the names of the settings that start with prefix.
func (s *Store) SettingNames(ctx context.Context, prefix string) ([]string, error) {
	names, err := list(ctx, s, "list settings", scanString, `SELECT name FROM app_settings WHERE name LIKE ? ESCAPE '!' ORDER BY name`,
		strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(prefix)+"%")
	return names, err
}

// S3Destination is an S3Mount's bucket as the auth servers' model downloads write to it; the
// manager keeps it, encrypted, for the mounts with spec.modelDownloads (the auth servers hold
// no Kubernetes credentials to read the Secret themselves).
type S3Destination struct {
	Endpoint        string `json:"endpoint"`
	Region          string `json:"region"`
	Bucket          string `json:"bucket"`
	Prefix          string `json:"prefix"`
	PathStyle       bool   `json:"path_style"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// S3DestinationPrefix starts the names of those settings.
const S3DestinationPrefix = "s3mount_destination:"

// S3DestinationSetting names the encrypted setting of an S3Mount's destination.
func S3DestinationSetting(namespace, name string) string {
	return S3DestinationPrefix + namespace + "/" + name
}
