-- Model downloads (internal/modeldl): one row a job, shown by every replica, run by whichever
-- process holds its lease; state_json is the transfer's resumable state (parts stored, the
-- sha256 so far), so another process goes on where a dead one stopped.
CREATE TABLE IF NOT EXISTS model_download_jobs (
  id VARCHAR(36) NOT NULL PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL,
  grant_to VARCHAR(36) NOT NULL DEFAULT '',
  username VARCHAR(128) NOT NULL,
  source VARCHAR(16) NOT NULL,
  request_json TEXT NOT NULL,
  destination VARCHAR(191) NOT NULL,
  folder VARCHAR(64) NOT NULL,
  filename VARCHAR(191) NOT NULL,
  status VARCHAR(16) NOT NULL,
  state_json TEXT NOT NULL,
  bytes_done BIGINT NOT NULL DEFAULT 0,
  total_bytes BIGINT NOT NULL DEFAULT 0,
  error_text TEXT NOT NULL,
  holder VARCHAR(64) NOT NULL DEFAULT '',
  lease_until BIGINT NOT NULL DEFAULT 0,
  cancel_requested INTEGER NOT NULL DEFAULT 0,
  created_at BIGINT NOT NULL,
  started_at BIGINT NOT NULL DEFAULT 0,
  updated_at BIGINT NOT NULL,
  finished_at BIGINT NOT NULL DEFAULT 0
){{table}};
CREATE INDEX model_download_jobs_status ON model_download_jobs (status, created_at);
CREATE INDEX model_download_jobs_user ON model_download_jobs (user_id, created_at);
