-- Single sign-on: which provider identity (a digest of issuer and subject) is which user, and
-- the groups it had at its last sign-in, so that a changed group → role mapping can be applied
-- (and the sessions it no longer allows revoked) without waiting for the next sign-in.
CREATE TABLE IF NOT EXISTS sso_identities (
  subject VARCHAR(64) NOT NULL PRIMARY KEY,
  user_id VARCHAR(36) NOT NULL,
  groups_json TEXT NOT NULL,
  updated_at BIGINT NOT NULL
){{table}};
CREATE UNIQUE INDEX sso_identities_user ON sso_identities (user_id);
