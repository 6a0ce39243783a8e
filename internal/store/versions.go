package store

import "context"

// Change-counter topics: each names the tables whose writes bump it.
const (
	TopicUsers    = "users"    // users, MFA state
	TopicRoles    = "roles"    // roles
	TopicIPRules  = "ip_rules" // ip_rules, bans
	TopicDevices  = "devices"  // locked_devices
	TopicSessions = "sessions" // session and token revocations
	TopicSettings = "settings" // app_settings
	TopicGrants   = "grants"   // model_grants, model_listings of S3Mounts
	// TopicDownloads moves with model_download_jobs; claiming a job bumps it first, which
	// serialises the claims of every process (the caps hold across replicas).
	TopicDownloads = "downloads"
)

// Topics lists every change-counter topic.
var Topics = []string{TopicUsers, TopicRoles, TopicIPRules, TopicDevices, TopicSessions, TopicSettings, TopicGrants, TopicDownloads}

// Versions returns every change counter: a process that caches a topic reloads it when its
// counter moved. One indexed read of a handful of rows.
func (s *Store) Versions(ctx context.Context) (map[string]int64, error) {
	rows, err := s.query(ctx, s.db, `SELECT topic, version FROM change_counters`)
	if err != nil {
		return nil, s.wrap("read change counters", err)
	}
	defer rows.Close()
	out := make(map[string]int64, len(Topics))
	for rows.Next() {
		var t string
		var v int64
		if err := rows.Scan(&t, &v); err != nil {
			return nil, s.wrap("read change counters", err)
		}
		out[t] = v
	}
	return out, s.wrap("read change counters", rows.Err())
}

// seedCounters adds the change counters that are missing (a topic added by a later version).
func seedCounters(ctx context.Context, s *Store, x execer) error {
	for _, t := range Topics {
		if _, err := x.ExecContext(ctx, s.q(s.d.insertIgnore(
			"INSERT INTO change_counters (topic, version) VALUES (?, 0)", "topic")), t); err != nil {
			return err
		}
	}
	return nil
}
