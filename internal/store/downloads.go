package store

import (
	"context"
	"database/sql"
	"time"
)

// Download job states.
const (
	DownloadQueued    = "queued"
	DownloadRunning   = "running"
	DownloadDone      = "done"
	DownloadFailed    = "failed"
	DownloadCancelled = "cancelled"
)

// DownloadJob is one model download (model_download_jobs).
type DownloadJob struct {
	ID, UserID, Username string
	GrantTo              string // the user the finished model is granted to ("": UserID)
	Source               string // huggingface, civitai
	Request              string // the request, JSON
	Destination          string // "S3Mount/<ns>/<name>" or "directory"
	Folder, Filename     string
	Status               string
	State                string // the transfer's resumable state, JSON
	BytesDone, Total     int64
	Error                string
	Holder               string
	LeaseUntil           time.Time
	CancelRequested      bool
	CreatedAt, UpdatedAt time.Time
	StartedAt            time.Time // first claimed
	FinishedAt           time.Time
}

const downloadColumns = `id, user_id, username, source, request_json, destination, folder, filename, status, state_json,
	bytes_done, total_bytes, error_text, holder, lease_until, cancel_requested, created_at, updated_at, finished_at, started_at, grant_to`

func scanDownload(sc scanner) (DownloadJob, error) {
	var j DownloadJob
	var lease, c, u, f, st sql.NullInt64
	var cancel int
	err := sc.Scan(&j.ID, &j.UserID, &j.Username, &j.Source, &j.Request, &j.Destination, &j.Folder, &j.Filename, &j.Status, &j.State,
		&j.BytesDone, &j.Total, &j.Error, &j.Holder, &lease, &cancel, &c, &u, &f, &st, &j.GrantTo)
	lease.Valid, f.Valid, st.Valid = lease.Int64 != 0, f.Int64 != 0, st.Int64 != 0 // 0: none yet
	j.LeaseUntil, j.CreatedAt, j.UpdatedAt, j.FinishedAt, j.CancelRequested = fromMS(lease), fromMS(c), fromMS(u), fromMS(f), cancel != 0
	j.StartedAt = fromMS(st)
	return j, err
}

// CreateDownloadJob queues a job (its ID is set here).
func (s *Store) CreateDownloadJob(ctx context.Context, j *DownloadJob) error {
	j.ID, j.Status = newID(), DownloadQueued
	t := now()
	j.CreatedAt, j.UpdatedAt = t, t
	if j.State == "" {
		j.State = "{}"
	}
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO model_download_jobs (id, user_id, username, source, request_json, destination, folder, filename,
			status, state_json, error_text, created_at, updated_at, grant_to) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?, ?)`,
			j.ID, j.UserID, j.Username, j.Source, j.Request, j.Destination, j.Folder, j.Filename, j.Status, j.State, t.UnixMilli(), t.UnixMilli(), j.GrantTo)
		return s.wrap("create download job", err)
	}, TopicDownloads)
}

// DownloadJob reads one job (ErrNotFound).
func (s *Store) DownloadJob(ctx context.Context, id string) (DownloadJob, error) {
	j, err := scanDownload(s.queryRow(ctx, s.db, `SELECT `+downloadColumns+` FROM model_download_jobs WHERE id = ?`, id))
	return j, s.wrap("read download job", err)
}

// DownloadJobs lists a user's jobs (userID "": everyone's), newest first, at most 500.
func (s *Store) DownloadJobs(ctx context.Context, userID string) ([]DownloadJob, error) {
	q, args := ofUser(`SELECT `+downloadColumns+` FROM model_download_jobs`, "created_at DESC, id", userID)
	return list(ctx, s, "list download jobs", scanDownload, q+` LIMIT 500`, args...)
}

// DownloadCaps bound the jobs that run at once: in all, and per source.
type DownloadCaps struct {
	Total     int
	PerSource map[string]int
}

// ClaimDownloadJob gives holder the oldest job it may run now — queued, or running under a
// lease that ran out (its process died: the next one resumes it) — within the caps, and holds
// it until `until`. ok is false when there is none. Claims of every process are serialised on
// the downloads change counter, so the caps hold across replicas.
func (s *Store) ClaimDownloadJob(ctx context.Context, holder string, caps DownloadCaps, at, until time.Time) (DownloadJob, bool, error) {
	var claimed DownloadJob
	ok := false
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE change_counters SET version = version + 1 WHERE topic = ?`, TopicDownloads); err != nil {
			return s.wrap("claim download job", err)
		}
		running := map[string]int{}
		total := 0
		live, err := s.query(ctx, tx, `SELECT source FROM model_download_jobs WHERE status = ? AND lease_until >= ?`, DownloadRunning, at.UnixMilli())
		if err != nil {
			return s.wrap("claim download job", err)
		}
		for live.Next() {
			var src string
			if err := live.Scan(&src); err != nil {
				live.Close()
				return s.wrap("claim download job", err)
			}
			running[src]++
			total++
		}
		live.Close()
		if caps.Total > 0 && total >= caps.Total {
			return nil
		}
		rows, err := s.query(ctx, tx, `SELECT `+downloadColumns+` FROM model_download_jobs
			WHERE status = ? OR (status = ? AND lease_until < ?) ORDER BY created_at, id LIMIT 50`, DownloadQueued, DownloadRunning, at.UnixMilli())
		if err != nil {
			return s.wrap("claim download job", err)
		}
		var candidates []DownloadJob
		for rows.Next() {
			j, err := scanDownload(rows)
			if err != nil {
				rows.Close()
				return s.wrap("claim download job", err)
			}
			candidates = append(candidates, j)
		}
		rows.Close()
		for _, j := range candidates {
			if c, capped := caps.PerSource[j.Source]; capped && running[j.Source] >= c {
				continue
			}
			if _, err := s.exec(ctx, tx, `UPDATE model_download_jobs SET status = ?, holder = ?, lease_until = ?, updated_at = ?,
				started_at = CASE WHEN started_at = 0 THEN ? ELSE started_at END WHERE id = ?`,
				DownloadRunning, holder, until.UnixMilli(), at.UnixMilli(), at.UnixMilli(), j.ID); err != nil {
				return s.wrap("claim download job", err)
			}
			j.Status, j.Holder, j.LeaseUntil = DownloadRunning, holder, until
			claimed, ok = j, true
			return nil
		}
		return nil
	})
	return claimed, ok, err
}

// SaveDownloadProgress records a running job's progress and renews holder's lease. held is
// false when another process has it now; cancel says a cancel was asked for.
func (s *Store) SaveDownloadProgress(ctx context.Context, id, holder, state string, done, total int64, until time.Time) (held, cancel bool, err error) {
	t := now().UnixMilli()
	res, err := s.exec(ctx, s.db, `UPDATE model_download_jobs SET state_json = ?, bytes_done = ?, total_bytes = ?, lease_until = ?, updated_at = ?
		WHERE id = ? AND holder = ? AND status = ?`, state, done, total, until.UnixMilli(), t, id, holder, DownloadRunning)
	if err != nil {
		return false, false, s.wrap("save download progress", err)
	}
	j, err := s.DownloadJob(ctx, id)
	if err != nil {
		return false, false, err
	}
	n, _ := res.RowsAffected()
	return (n == 1 || j.Holder == holder) && j.Status == DownloadRunning, j.CancelRequested, nil
}

// FinishDownloadJob ends a job holder runs: done, failed (with the reason) or cancelled.
func (s *Store) FinishDownloadJob(ctx context.Context, id, holder, status, reason string) error {
	t := now().UnixMilli()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `UPDATE model_download_jobs SET status = ?, error_text = ?, finished_at = ?, updated_at = ?, lease_until = 0
			WHERE id = ? AND holder = ? AND status = ?`, status, reason, t, t, id, holder, DownloadRunning)
		return s.wrap("finish download job", err)
	}, TopicDownloads)
}

// CancelDownloadJob asks for a job to stop (userID "": any user's): a queued job is cancelled
// at once, a running one by its process at its next part.
func (s *Store) CancelDownloadJob(ctx context.Context, id, userID string) error {
	j, err := s.DownloadJob(ctx, id)
	if err != nil {
		return err
	}
	if userID != "" && j.UserID != userID {
		return ErrNotFound
	}
	t := now().UnixMilli()
	return s.inTx(ctx, func(tx *sql.Tx) error {
		if _, err := s.exec(ctx, tx, `UPDATE model_download_jobs SET status = ?, finished_at = ?, updated_at = ? WHERE id = ? AND status = ?`,
			DownloadCancelled, t, t, id, DownloadQueued); err != nil {
			return s.wrap("cancel download job", err)
		}
		_, err := s.exec(ctx, tx, `UPDATE model_download_jobs SET cancel_requested = 1, updated_at = ? WHERE id = ? AND status = ?`, t, id, DownloadRunning)
		return s.wrap("cancel download job", err)
	}, TopicDownloads)
}
