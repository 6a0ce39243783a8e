package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mss-login/mss-login/internal/netaddr"
)

// maxLifetime caps durations so that converting them to time.Duration cannot overflow.
const maxLifetime = 100 * 365 * 24 * time.Hour

// validate checks the merged configuration and normalises aliases in place. Every message names
// the key and where its value came from (l.failKey).
func (l *loader) validate(c *Config) {
	l.envName("secret_key_env", c.SecretKeyEnv)
	l.validateUsersDB(c)

	l.duration("access_token_expiration_hours", c.AccessTokenExpirationHours, time.Hour)
	l.duration("max_access_token_expiration_hours", c.MaxAccessTokenExpirationHours, time.Hour)
	if c.AccessTokenExpirationHours > c.MaxAccessTokenExpirationHours && c.MaxAccessTokenExpirationHours > 0 {
		l.failKey("access_token_expiration_hours", "%d is more than max_access_token_expiration_hours (%d, from %s)",
			c.AccessTokenExpirationHours, c.MaxAccessTokenExpirationHours, l.sourceOf("max_access_token_expiration_hours"))
	}
	l.duration("session_idle_revoke_minutes", c.SessionIdleRevokeMinutes, time.Minute)
	for i := range c.LogLevels {
		l.enum(fmt.Sprintf("log_levels[%d]", i), "log_levels", &c.LogLevels[i], strings.ToUpper,
			[]string{"INFO", "WARNING", "ERROR", "DEBUG"}, nil)
	}

	if c.BlacklistAfterAttempts < 0 {
		l.failKey("blacklist_after_attempts", "must be 0 (lockout off) or more, got %d", c.BlacklistAfterAttempts)
	}
	l.duration("blacklist_expiry_hours", c.BlacklistExpiryHours, time.Hour)
	l.duration("failure_window_minutes", c.FailureWindowMinutes, time.Minute)
	if c.AuditRetentionDays < 0 {
		l.failKey("audit_retention_days", "must be 0 (keep every event) or more, got %d", c.AuditRetentionDays)
	} else if c.AuditRetentionDays > 0 {
		l.duration("audit_retention_days", c.AuditRetentionDays, 24*time.Hour)
	}

	l.addressList("local_network_cidrs", c.LocalNetworkCIDRs)
	l.addressList("trusted_proxies", c.TrustedProxies)
	l.addressList("recovery_mode_hosts", c.RecoveryModeHosts)

	if c.DebugMode {
		l.warnKey("debug_mode", "enables debug logging; unlike the original, tokens, passwords and secrets are never logged")
	}
	l.validateAutoUpdate(&c.AutoUpdate)

	if !strings.EqualFold(c.TokenAlgorithm, "HS256") {
		l.failKey("token_algorithm", "must be HS256, got %s: the signing key is SECRET_KEY, a shared secret, so asymmetric algorithms (RS256, ES256, PS256) cannot work", quote(c.TokenAlgorithm))
	}
	c.TokenAlgorithm = "HS256"

	l.validateLoginBackground(c)
	l.intRange("loading_screen.timeout_seconds", c.LoadingScreen.TimeoutSeconds, 1, 300)
	l.validateS3(&c.S3Storage)

	l.httpURL("host_base_url", c.HostBaseURL, false)
	l.httpURL("upstream_url", c.UpstreamURL, true)
	l.hostPort("listen_address", c.ListenAddress)
	l.hostPort("metrics_address", c.MetricsAddress)
	if c.ListenAddress == c.MetricsAddress && !strings.HasSuffix(c.ListenAddress, ":0") {
		l.failKey("metrics_address", "must differ from listen_address (%s)", quote(c.ListenAddress))
	}
	l.intRange("lockout_mirror.max_objects", c.LockoutMirror.MaxObjects, 1, 100000)
	l.validateNotifications(c)
	l.validateOIDC(c)
	l.validateDownloads(c)
}

func (l *loader) validateUsersDB(c *Config) {
	db := &c.UsersDB
	l.enum("users_db.backend", "", &db.Backend, strings.ToLower,
		[]string{"sqlite", "postgresql", "mysql"}, map[string]string{"postgres": "postgresql"})
	l.enum("users_db.encryption_level", "", &db.EncryptionLevel, strings.ToLower,
		[]string{"", "low", "standard", "secure"}, map[string]string{"medium": "standard", "high": "secure"})
	l.enum("users_db.postgres_sslmode", "", &db.PostgresSSLMode, strings.ToLower,
		[]string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}, nil)
	l.enum("users_db.mysql_tls", "", &db.MySQLTLS, strings.ToLower,
		[]string{"true", "false", "skip-verify", "preferred"}, nil)
	l.intRange("users_db.postgres_port", db.PostgresPort, 1, 65535)
	l.intRange("users_db.mysql_port", db.MySQLPort, 1, 65535)
	l.intRange("users_db.max_open_connections", db.MaxOpenConnections, 1, 1000)

	if _, err := resolveUnder(c.DataDir, db.SQLitePath); err != nil {
		l.failKey("users_db.sqlite_path", "%v", err)
	}
	// The connection settings of the backend in use must be there; the others may be anything.
	type setting struct{ key, value string }
	var required []setting
	switch db.Backend {
	case "postgresql":
		required = []setting{{"users_db.postgres_host", db.PostgresHost}, {"users_db.postgres_database", db.PostgresDatabase}, {"users_db.postgres_user", db.PostgresUser}}
	case "mysql":
		required = []setting{{"users_db.mysql_host", db.MySQLHost}, {"users_db.mysql_database", db.MySQLDatabase}, {"users_db.mysql_user", db.MySQLUser}}
	}
	for _, s := range required {
		if strings.TrimSpace(s.value) == "" {
			l.failKey(s.key, "must not be empty when users_db.backend is %s", db.Backend)
		}
	}
}

func (l *loader) validateAutoUpdate(au *AutoUpdate) {
	if l.enum("auto_update.mode", "", &au.Mode, strings.ToLower, []string{"notify", "auto"}, nil) && au.Mode == "auto" {
		l.warnKey("auto_update.mode", `"auto" is treated as "notify": mss-login never updates itself; update the image instead`)
		au.Mode = "notify"
	}
	l.enum("auto_update.check_mode", "", &au.CheckMode, strings.ToLower, []string{"releases", "branch"}, nil)
	l.httpURL("auto_update.check_url", au.CheckURL, false)
	l.httpURL("auto_update.changelog_url", au.ChangelogURL, false)
	l.httpURL("auto_update.changelog_raw_base_url", au.ChangelogRawBaseURL, false)
	l.envName("auto_update.token_env", au.TokenEnv)
	l.duration("auto_update.check_interval_hours", au.CheckIntervalHours, time.Hour)
}

func (l *loader) validateLoginBackground(c *Config) {
	lb := &c.LoginBackground
	l.enum("login_background.source", "", &lb.Source, strings.ToLower, []string{"url", "local"}, nil)
	l.enum("login_background.media_kind", "", &lb.MediaKind, strings.ToLower, []string{"auto", "image", "video"}, nil)
	l.httpURL("login_background.url", lb.URL, false)
	if lb.LocalPath != "" {
		if _, err := resolveUnder(c.DataDir, lb.LocalPath); err != nil {
			l.failKey("login_background.local_path", "%v", err)
		}
	}
}

func (l *loader) validateS3(s3 *S3Storage) {
	l.httpURL("s3_storage.endpoint_url", s3.EndpointURL, false)
	l.envName("s3_storage.access_key_id_env", s3.AccessKeyIDEnv)
	l.envName("s3_storage.secret_access_key_env", s3.SecretAccessKeyEnv)
	l.enum("s3_storage.mount.mode", "", &s3.Mount.Mode, strings.ToLower, []string{"auto", "sync", "mount"}, nil)
	l.duration("s3_storage.mount.sync_interval_seconds", s3.Mount.SyncIntervalSeconds, time.Second)
	// Each folder becomes one path segment under <mount>/models/, so it must not climb out.
	for i, folder := range s3.Mount.ModelFolders {
		if folder == "" || folder == "." || folder == ".." || strings.ContainsAny(folder, `/\`) {
			l.failKey("s3_storage.mount.model_folders", "entry %d (%s) must be a single folder name", i, quote(folder))
		}
	}
	ws := &s3.WorkflowSync
	l.duration("s3_storage.workflow_sync.sync_interval_seconds", ws.SyncIntervalSeconds, time.Second)
	l.enum("s3_storage.workflow_sync.conflict_strategy", "", &ws.ConflictStrategy, strings.ToLower,
		[]string{"newer_wins", "local_wins", "s3_wins"}, nil)
	l.intRange("s3_storage.workflow_sync.max_workflow_size_mb", ws.MaxWorkflowSizeMB, 1, 1<<20)
}

// enum checks *v against allowed values after normalising it with norm (case) and aliases,
// and stores the normalised value. sourceKey is the key whose source to name when it differs
// from key (list entries). It reports whether the value is valid.
func (l *loader) enum(key, sourceKey string, v *string, norm func(string) string, allowed []string, aliases map[string]string) bool {
	n := norm(strings.TrimSpace(*v))
	if a, ok := aliases[n]; ok {
		n = a
	}
	for _, a := range allowed {
		if n == a {
			*v = n
			return true
		}
	}
	shown := make([]string, len(allowed))
	for i, a := range allowed {
		shown[i] = a
		if a == "" {
			shown[i] = `""`
		}
	}
	msg := fmt.Sprintf("must be one of %s, got %s", strings.Join(shown, ", "), quote(*v))
	if sourceKey == "" {
		sourceKey = key
	}
	l.fail(l.sourceOf(sourceKey), key, "%s", msg)
	return false
}

func (l *loader) intRange(key string, v, lo, hi int) {
	if v < lo || v > hi {
		l.failKey(key, "must be between %d and %d, got %d", lo, hi, v)
	}
}

// duration checks a positive count of unit that fits in a time.Duration.
func (l *loader) duration(key string, v int, unit time.Duration) {
	if v <= 0 {
		l.failKey(key, "must be more than 0, got %d", v)
	} else if v > int(maxLifetime/unit) {
		l.failKey(key, "must be at most %d (100 years), got %d", int(maxLifetime/unit), v)
	}
}

// addressList checks that every entry is an IP or a CIDR, and trims the entries in place.
func (l *loader) addressList(key string, list []string) {
	for i, entry := range list {
		list[i] = strings.TrimSpace(entry)
		if _, err := netaddr.ParsePrefix(entry); err != nil {
			l.fail(l.sourceOf(key), fmt.Sprintf("%s[%d]", key, i), "%s: %v", quote(entry), err)
		}
	}
}

// envName fails key (a *_env key) unless v is the name of an environment variable.
func (l *loader) envName(key, v string) {
	if !validEnvName(v) {
		l.failKey(key, "must be the name of an environment variable (letters, digits and _), got %s", quote(v))
	}
}

// httpURL checks an absolute http(s) URL with a host. Empty is allowed unless required. The
// URL is echoed with any password masked.
func (l *loader) httpURL(key, s string, required bool) {
	if s == "" {
		if required {
			l.failKey(key, "must not be empty")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // url.Error repeats the whole URL, which may hold a password
		}
		l.failKey(key, "is not a valid URL: %v", err)
		return
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		l.failKey(key, "must be an absolute http:// or https:// URL with a host, got %s", quote(u.Redacted()))
	}
}

func (l *loader) hostPort(key, s string) {
	_, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		l.failKey(key, "must be host:port or :port, got %s", quote(s))
		return
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		l.failKey(key, "the port must be a number from 0 to 65535, got %s", quote(s))
	}
}

// resolveUnder resolves a configured path: absolute paths are kept, relative ones are joined to
// dir and must stay inside it.
func resolveUnder(dir, p string) (string, error) {
	switch {
	case p == "":
		return "", errors.New("must not be empty")
	case filepath.IsAbs(p):
		return filepath.Clean(p), nil
	case !filepath.IsLocal(p):
		return "", fmt.Errorf("relative path %s leaves the data directory; use a path inside it or an absolute path", quote(p))
	}
	return filepath.Join(dir, p), nil
}
