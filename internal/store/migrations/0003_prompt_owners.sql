-- Which mss-login user queued each ComfyUI prompt. The auth server assigns every prompt id it
-- forwards and records it here first, so every replica filters queues and histories alike.
CREATE TABLE IF NOT EXISTS prompt_owners (
  prompt_id VARCHAR(64) PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL,
  created_at BIGINT NOT NULL
){{table}};
CREATE INDEX prompt_owners_created ON prompt_owners (created_at);
