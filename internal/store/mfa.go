package store

import (
	"context"
	"crypto/subtle"
	"database/sql"
)

// SetMFA stores the user's TOTP secret (encrypted with the field key) and whether MFA is
// enabled. An empty secret clears MFA, with the backup codes.
func (s *Store) SetMFA(ctx context.Context, userID, totpSecret string, enabled bool) error {
	var sealed any
	if totpSecret != "" {
		if s.fields == nil {
			return ErrNoSecret
		}
		v, err := s.fields.Seal(totpSecret, totpContext(userID))
		if err != nil {
			return err
		}
		sealed = v
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		// totp_last_step is kept: steps only grow, and a code claimed while enrolling must not
		// be accepted again once MFA is enabled.
		if err := s.execOne(ctx, tx, "set MFA", `UPDATE users SET totp_secret = ?, mfa_enabled = ?, updated_at = ? WHERE id = ?`,
			sealed, enabled && totpSecret != "", now().UnixMilli(), userID); err != nil {
			return err
		}
		if totpSecret != "" {
			return nil
		}
		_, err := s.exec(ctx, tx, `DELETE FROM mfa_backup_codes WHERE user_id = ?`, userID)
		return s.wrap("set MFA", err)
	}, TopicUsers)
}

func totpContext(userID string) string { return "users.totp_secret:" + userID }

// TOTPSecret returns the user's decrypted TOTP secret ("" when none).
func (s *Store) TOTPSecret(ctx context.Context, userID string) (string, error) {
	var sealed sql.NullString
	if err := s.queryRow(ctx, s.db, `SELECT totp_secret FROM users WHERE id = ?`, userID).Scan(&sealed); err != nil {
		return "", s.wrap("read TOTP secret", err)
	}
	if !sealed.Valid || sealed.String == "" {
		return "", nil
	}
	if s.fields == nil {
		return "", ErrNoSecret
	}
	return s.fields.Open(sealed.String, totpContext(userID))
}

// ClaimTOTPStep records that the TOTP code of time step was used; it returns false when that
// step or a later one was already used (a replayed code).
func (s *Store) ClaimTOTPStep(ctx context.Context, userID string, step int64) (bool, error) {
	res, err := s.exec(ctx, s.db, `UPDATE users SET totp_last_step = ? WHERE id = ? AND (totp_last_step IS NULL OR totp_last_step < ?)`,
		step, userID, step)
	if err != nil {
		return false, s.wrap("claim TOTP step", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// SetBackupCodes replaces the user's backup codes with these SHA-256 hashes (hex).
func (s *Store) SetBackupCodes(ctx context.Context, userID string, hashes []string) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `DELETE FROM mfa_backup_codes WHERE user_id = ?`, userID); err != nil {
			return s.wrap("set backup codes", err)
		}
		t := now().UnixMilli()
		for _, h := range hashes {
			if _, err := s.exec(ctx, tx, `INSERT INTO mfa_backup_codes (user_id, code_hash, created_at) VALUES (?, ?, ?)`,
				userID, h, t); err != nil {
				return s.wrap("set backup codes", err)
			}
		}
		return nil
	}, TopicUsers)
}

// ConsumeBackupCode marks the unused backup code with this hash as used; true only for the one
// caller that consumed it.
func (s *Store) ConsumeBackupCode(ctx context.Context, userID, hash string) (bool, error) {
	rows, err := s.query(ctx, s.db, `SELECT id, code_hash FROM mfa_backup_codes WHERE user_id = ? AND used_at IS NULL`, userID)
	if err != nil {
		return false, s.wrap("consume backup code", err)
	}
	var match int64 = -1
	for rows.Next() {
		var id int64
		var h string
		if err := rows.Scan(&id, &h); err != nil {
			rows.Close()
			return false, s.wrap("consume backup code", err)
		}
		// Compare every code in constant time rather than looking the hash up by value.
		if subtle.ConstantTimeCompare([]byte(h), []byte(hash)) == 1 {
			match = id
		}
	}
	rows.Close()
	if match < 0 {
		return false, s.wrap("consume backup code", rows.Err())
	}
	res, err := s.exec(ctx, s.db, `UPDATE mfa_backup_codes SET used_at = ? WHERE id = ? AND used_at IS NULL`, now().UnixMilli(), match)
	if err != nil {
		return false, s.wrap("consume backup code", err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}
