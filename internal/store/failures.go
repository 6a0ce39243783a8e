package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Failure scopes.
const (
	ScopeIP   = "ip"
	ScopeUser = "user"
)

// ErrContended is returned by AdmitAttempt when other attempts kept moving the count for so long
// that this one could not be counted; the caller refuses it (fail closed) without counting it.
var ErrContended = errors.New("attempt counter contended")

// AdmitAttempt counts one credential check for (scope, subject) at at, unless refuse, given the
// failures of the current window and the time of the latest (zero when none), says it must wait.
// The read and the count are one compare-and-swap on the row: concurrent attempts from any
// number of processes each see a distinct count, and none is counted on a state it did not see,
// so a refused attempt changes nothing. It returns the count (this attempt's number when
// admitted; the current failures when refused).
func (s *Store) AdmitAttempt(ctx context.Context, scope, subject string, at time.Time, window time.Duration,
	refuse func(failures int, last time.Time) bool) (n int, admitted bool, err error) {
	if scope != ScopeIP && scope != ScopeUser {
		return 0, false, fmt.Errorf("admit attempt: unknown scope %q", scope)
	}
	subject = truncate(subject, 191)
	t, start := at.UnixMilli(), at.Add(-window).UnixMilli()
	// Each lost swap means another attempt was counted; the cooldown starts after a few, so a
	// storm settles within a handful of rounds.
	for range 32 {
		var failures int
		var ws, last int64
		err := s.queryRow(ctx, s.db, `SELECT failures, window_start, last_failure_at FROM login_failures WHERE scope = ? AND subject = ?`,
			scope, subject).Scan(&failures, &ws, &last)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if refuse(0, time.Time{}) {
				return 0, false, nil
			}
			res, err := s.exec(ctx, s.db, s.d.insertIgnore(`INSERT INTO login_failures (scope, subject, failures, window_start, last_failure_at)
				VALUES (?, ?, 1, ?, ?)`, "scope, subject"), scope, subject, t, t)
			if err != nil {
				return 0, false, s.wrap("count attempt", err)
			}
			if k, _ := res.RowsAffected(); k == 1 {
				return 1, true, nil
			}
			continue
		case err != nil:
			return 0, false, s.wrap("read failures", err)
		}
		cur, curLast, newStart := failures, time.UnixMilli(last).UTC(), ws
		if ws < start { // the window is over: the count starts again
			cur, curLast, newStart = 0, time.Time{}, t
		}
		if refuse(cur, curLast) {
			return cur, false, nil
		}
		res, err := s.exec(ctx, s.db, `UPDATE login_failures SET failures = ?, window_start = ?, last_failure_at = ?
			WHERE scope = ? AND subject = ? AND failures = ? AND window_start = ? AND last_failure_at = ?`,
			cur+1, newStart, t, scope, subject, failures, ws, last)
		if err != nil {
			return 0, false, s.wrap("count attempt", err)
		}
		if k, _ := res.RowsAffected(); k == 1 {
			return cur + 1, true, nil
		}
	}
	return 0, false, ErrContended
}

// RecordFailure counts one failed attempt for (scope, subject) at t and returns the count
// within the window that ends at t; a count whose window started before t-window starts over.
// Concurrent calls from any number of processes each see a distinct count.
func (s *Store) RecordFailure(ctx context.Context, scope, subject string, at time.Time, window time.Duration) (int, error) {
	if scope != ScopeIP && scope != ScopeUser {
		return 0, fmt.Errorf("record failure: unknown scope %q", scope)
	}
	subject = truncate(subject, 191)
	t, start := at.UnixMilli(), at.Add(-window).UnixMilli()
	var n int
	if _, ok := s.d.(mysqlDialect); ok {
		// No RETURNING on MySQL: the upsert's row lock is held to the end of the transaction,
		// so the read that follows sees this call's count.
		err := s.inTx(ctx, func(tx *sql.Tx) error {
			if _, err := s.exec(ctx, tx, `INSERT INTO login_failures (scope, subject, failures, window_start, last_failure_at)
				VALUES (?, ?, 1, ?, ?) ON DUPLICATE KEY UPDATE
				failures = IF(window_start < ?, 1, failures + 1),
				window_start = IF(window_start < ?, VALUES(window_start), window_start),
				last_failure_at = VALUES(last_failure_at)`, scope, subject, t, t, start, start); err != nil {
				return s.wrap("record failure", err)
			}
			return s.wrap("record failure", s.queryRow(ctx, tx,
				`SELECT failures FROM login_failures WHERE scope = ? AND subject = ?`, scope, subject).Scan(&n))
		})
		return n, err
	}
	err := s.queryRow(ctx, s.db, `INSERT INTO login_failures (scope, subject, failures, window_start, last_failure_at)
		VALUES (?, ?, 1, ?, ?) ON CONFLICT (scope, subject) DO UPDATE SET
		failures = CASE WHEN login_failures.window_start < ? THEN 1 ELSE login_failures.failures + 1 END,
		window_start = CASE WHEN login_failures.window_start < ? THEN excluded.window_start ELSE login_failures.window_start END,
		last_failure_at = excluded.last_failure_at
		RETURNING failures`, scope, subject, t, t, start, start).Scan(&n)
	return n, s.wrap("record failure", err)
}

// ForgetAttempt takes one attempt back out of the count of (scope, subject) (an admitted attempt
// that succeeded, where success must not forget the others).
func (s *Store) ForgetAttempt(ctx context.Context, scope, subject string) error {
	_, err := s.exec(ctx, s.db, `UPDATE login_failures SET failures = failures - 1 WHERE scope = ? AND subject = ? AND failures > 0`,
		scope, truncate(subject, 191))
	return s.wrap("forget attempt", err)
}

// Failures returns the count for (scope, subject) within the window ending at t.
func (s *Store) Failures(ctx context.Context, scope, subject string, at time.Time, window time.Duration) (int, error) {
	n, _, err := s.FailureState(ctx, scope, subject, at, window)
	return n, err
}

// ResetFailures forgets the failures of (scope, subject), after a successful login.
func (s *Store) ResetFailures(ctx context.Context, scope, subject string) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM login_failures WHERE scope = ? AND subject = ?`, scope, truncate(subject, 191))
	return s.wrap("reset failures", err)
}

// FailureState returns the count for (scope, subject) within the window ending at t and the
// time of the latest failure (zero when none).
func (s *Store) FailureState(ctx context.Context, scope, subject string, at time.Time, window time.Duration) (int, time.Time, error) {
	var n int
	var last int64
	err := s.queryRow(ctx, s.db, `SELECT failures, last_failure_at FROM login_failures WHERE scope = ? AND subject = ? AND window_start >= ?`,
		scope, truncate(subject, 191), at.Add(-window).UnixMilli()).Scan(&n, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, s.wrap("read failures", err)
	}
	return n, time.UnixMilli(last).UTC(), nil
}
