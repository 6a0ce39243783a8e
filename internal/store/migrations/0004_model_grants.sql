-- Model grants: a role's members, or one user, may see and use the models of a folder that a
-- pattern matches. Rows a Kubernetes resource owns carry its reference in owner_ref and are
-- replaced together by the operator; rows made through the admin API have owner_ref ''.
CREATE TABLE IF NOT EXISTS model_grants (
  id {{autoid}},
  role VARCHAR(64) NOT NULL DEFAULT '',
  user_id VARCHAR(36) NOT NULL DEFAULT '',
  folder VARCHAR(64) NOT NULL,
  pattern VARCHAR(191) NOT NULL,
  owner_ref VARCHAR(191) NOT NULL DEFAULT '',
  created_by VARCHAR(128) NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
){{table}};
CREATE INDEX model_grants_owner ON model_grants (owner_ref);

-- Which models exist: what ComfyUI lists (source 'comfyui', recorded by the auth server, read
-- by the operator for the status of grants) and what each S3Mount holds (source
-- 'S3Mount/<namespace>/<name>', recorded by the manager; the auth server shows those only to
-- users with can_access_s3_storage).
CREATE TABLE IF NOT EXISTS model_listings (
  source VARCHAR(191) NOT NULL,
  folder VARCHAR(64) NOT NULL,
  name VARCHAR(191) NOT NULL,
  updated_at BIGINT NOT NULL,
  PRIMARY KEY (source, folder, name)
){{table}};
