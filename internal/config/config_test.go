package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	msslogin "github.com/mss-login/mss-login"
)

// Values that must never be printed. Each is unique so that a leak is unambiguous.
const (
	secretKey     = "sk-0123456789abcdef0123456789abcdef-SECRETKEY"
	dbPassword    = "db-password-Zq8vN1"
	pgPassword    = "pg-password-Yx7uM2"
	s3KeyID       = "AKIA-S3-KEY-ID-Wq6"
	s3SecretKey   = "s3-secret-access-key-Vp5"
	ntfyToken     = "tk_ntfy-token-Uo4"
	oidcSecret    = "oidc-client-secret-Pw8"
	releaseToken  = "ghp_release-token-Qz7"
	failsafeValue = "failsafe-reason-Tn3"
)

// env builds an environment from name/value pairs, with HOME set so that the default data
// directory is predictable.
func env(kv ...string) func(string) (string, bool) {
	m := map[string]string{"HOME": "/home/tester"}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func mustLoad(t *testing.T, file string, e func(string) (string, bool)) (*Config, *Report) {
	t.Helper()
	var data []byte
	if file != "" {
		data = []byte(file)
	}
	cfg, rep, err := LoadBytes(data, "config.json", e)
	if err != nil {
		t.Fatalf("LoadBytes: %v", err)
	}
	return cfg, rep
}

func TestDefaultsLoadAndMatchTheOriginal(t *testing.T) {
	cfg, rep := mustLoad(t, "", env())

	checks := []struct {
		name      string
		got, want any
	}{
		{"users_db.backend", cfg.UsersDB.Backend, "sqlite"},
		{"users_db.postgres_port", cfg.UsersDB.PostgresPort, 5432},
		{"users_db.mysql_port", cfg.UsersDB.MySQLPort, 3306},
		{"users_db.encryption_level", cfg.UsersDB.EncryptionLevel, "secure"},
		{"blacklist_after_attempts", cfg.BlacklistAfterAttempts, 10},
		{"blacklist_expiry_hours", cfg.BlacklistExpiryHours, 24},
		{"access_token_expiration_hours", cfg.AccessTokenExpirationHours, 24},
		{"max_access_token_expiration_hours", cfg.MaxAccessTokenExpirationHours, 8760},
		{"mfa_disabled", cfg.MFADisabled, true},
		{"require_auth_for_remote_api", cfg.RequireAuthForRemoteAPI, true},
		{"force_https", cfg.ForceHTTPS, false},
		{"allow_guest_jwt", cfg.AllowGuestJWT, false},
		{"experimental_features", cfg.ExperimentalFeatures, false},
		{"token_algorithm", cfg.TokenAlgorithm, "HS256"},
		{"log_levels", cfg.LogLevels, []string{"INFO"}},
		{"auto_update.mode", cfg.AutoUpdate.Mode, "notify"},
		{"auto_update.check_mode", cfg.AutoUpdate.CheckMode, "releases"},
		{"auto_update.check_interval_hours", cfg.AutoUpdate.CheckIntervalHours, 24},
		{"auto_update.changelog_raw_base_url", cfg.AutoUpdate.ChangelogRawBaseURL, "https://raw.githubusercontent.com"},
		{"auto_update.token_env", cfg.AutoUpdate.TokenEnv, "MSS_LOGIN_RELEASE_TOKEN"},
		{"ReleaseToken set", cfg.ReleaseToken.IsSet(), false},
		{"loading_screen.timeout_seconds", cfg.LoadingScreen.TimeoutSeconds, 15},
		{"s3_storage.prefix", cfg.S3Storage.Prefix, "comfyui/"},
		{"s3_storage.mount.local_mount_path", cfg.S3Storage.Mount.LocalMountPath, "/workspace/s3"},
		{"len(s3_storage.mount.model_folders)", len(cfg.S3Storage.Mount.ModelFolders), 12},
		{"s3_storage.mount.sync_interval_seconds", cfg.S3Storage.Mount.SyncIntervalSeconds, 600},
		{"s3_storage.workflow_sync.sync_interval_seconds", cfg.S3Storage.WorkflowSync.SyncIntervalSeconds, 120},
		{"s3_storage.workflow_sync.conflict_strategy", cfg.S3Storage.WorkflowSync.ConflictStrategy, "newer_wins"},
		{"recovery_mode_hosts", cfg.RecoveryModeHosts, []string{"127.0.0.1", "::1"}},
		{"trusted_proxies", cfg.TrustedProxies, []string{}},
		{"upstream_url", cfg.UpstreamURL, "http://127.0.0.1:8188"},
		{"lockout_mirror.max_objects", cfg.LockoutMirror.MaxObjects, 1000},
		{"DataDir", cfg.DataDir, "/home/tester/.comfyui-mss-login"},
		{"SQLitePath", cfg.SQLitePath(), "/home/tester/.comfyui-mss-login/data/mss_login_data.db"},
		{"SecretKey set", cfg.SecretKey.IsSet(), false},
	}
	for _, c := range checks {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %#v, want %#v", c.name, c.got, c.want)
		}
	}
	if len(rep.Ignored) != 0 {
		t.Errorf("defaults alone reported ignored keys: %v", rep.Ignored)
	}
	if rep.File != "" {
		t.Errorf("Report.File = %q without a file", rep.File)
	}
	if len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "SECRET_KEY") {
		t.Errorf("warnings = %q, want only the SECRET_KEY one", rep.Warnings)
	}
}

// Every field of Config must have a value in config.defaults.json, so that no key is known to
// the code and missing from the file people read. (The reverse, every key of the file having a
// field or being ignored, is proven by the defaults loading without an unknown-key error.)
func TestEveryFieldHasADefault(t *testing.T) {
	var defaults map[string]any
	if err := json.Unmarshal(msslogin.DefaultConfigJSON, &defaults); err != nil {
		t.Fatal(err)
	}
	for _, key := range knownKeys("", reflect.TypeFor[Config]()) {
		var v any = defaults
		for part := range strings.SplitSeq(key, ".") {
			obj, _ := v.(map[string]any)
			v = obj[part]
		}
		if v == nil {
			t.Errorf("config.defaults.json has no value for %s", key)
		}
	}
	for _, entry := range ignoredKeys {
		if _, known := fieldAtKey(entry); known {
			t.Errorf("ignored key %s has a field in Config", entry)
		}
	}
	for _, b := range envBindings {
		if _, known := fieldAtKey(b.key); !known {
			t.Errorf("environment binding %v sets %s, which Config lacks", b.vars, b.key)
		}
	}
}

func fieldAtKey(key string) (reflect.StructField, bool) {
	t := reflect.TypeFor[Config]()
	var f reflect.StructField
	for part := range strings.SplitSeq(key, ".") {
		if t.Kind() != reflect.Struct {
			return f, false
		}
		var ok bool
		if f, ok = fieldByKey(t, part); !ok {
			return f, false
		}
		t = f.Type
	}
	return f, true
}

func TestMergeOrder(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		check func(*Config) (got, want any)
	}{
		{"file overrides default", `{"blacklist_after_attempts": 3}`, nil,
			func(c *Config) (any, any) { return c.BlacklistAfterAttempts, 3 }},
		{"env overrides file", `{"users_db": {"postgres_port": 6000}}`, []string{"USERS_DB_POSTGRES_PORT", "7000"},
			func(c *Config) (any, any) { return c.UsersDB.PostgresPort, 7000 }},
		{"deep merge keeps siblings", `{"users_db": {"postgres_port": 6000}}`, nil,
			func(c *Config) (any, any) {
				return []any{c.UsersDB.PostgresPort, c.UsersDB.PostgresHost, c.UsersDB.Backend}, []any{6000, "localhost", "sqlite"}
			}},
		{"deep merge two levels down", `{"s3_storage": {"mount": {"read_only": true}}}`, nil,
			func(c *Config) (any, any) {
				return []any{c.S3Storage.Mount.ReadOnly, len(c.S3Storage.Mount.ModelFolders), c.S3Storage.Prefix}, []any{true, 12, "comfyui/"}
			}},
		{"arrays replace", `{"s3_storage": {"mount": {"model_folders": ["loras"]}}}`, nil,
			func(c *Config) (any, any) { return c.S3Storage.Mount.ModelFolders, []string{"loras"} }},
		{"null keeps the default", `{"blacklist_expiry_hours": null, "users_db": {"backend": null}, "recovery_mode_hosts": null}`, nil,
			func(c *Config) (any, any) {
				return []any{c.BlacklistExpiryHours, c.UsersDB.Backend, c.RecoveryModeHosts}, []any{24, "sqlite", []string{"127.0.0.1", "::1"}}
			}},
		{"null object keeps the default", `{"auto_update": null}`, nil,
			func(c *Config) (any, any) { return c.AutoUpdate.CheckIntervalHours, 24 }},
		{"older POSTGRES_ name", ``, []string{"POSTGRES_HOST", "db.old"},
			func(c *Config) (any, any) { return c.UsersDB.PostgresHost, "db.old" }},
		{"USERS_DB_ name wins over POSTGRES_", ``, []string{"POSTGRES_HOST", "db.old", "USERS_DB_POSTGRES_HOST", "db.new"},
			func(c *Config) (any, any) { return c.UsersDB.PostgresHost, "db.new" }},
		{"POSTGRES_DB", ``, []string{"POSTGRES_DB", "comfy"},
			func(c *Config) (any, any) { return c.UsersDB.PostgresDatabase, "comfy" }},
		{"MYSQL_ names", ``, []string{"MYSQL_HOST", "maria", "USERS_DB_MYSQL_PORT", "3307"},
			func(c *Config) (any, any) {
				return []any{c.UsersDB.MySQLHost, c.UsersDB.MySQLPort}, []any{"maria", 3307}
			}},
		{"env bool spellings", ``, []string{"FORCE_HTTPS", "Yes", "MFA_DISABLED", "off", "REQUIRE_AUTH_FOR_REMOTE_API", "0", "EXPERIMENTAL_MFA", "ON"},
			func(c *Config) (any, any) {
				return []bool{c.ForceHTTPS, c.MFADisabled, c.RequireAuthForRemoteAPI, c.Experimental.MFA}, []bool{true, false, false, true}
			}},
		{"RECOVERY_MODE alias and hosts list", ``, []string{"RECOVERY_MODE_ENABLED", "true", "RECOVERY_MODE_HOSTS", " 10.0.0.0/8, ,::1 "},
			func(c *Config) (any, any) {
				return []any{c.RecoveryMode, c.RecoveryModeHosts}, []any{true, []string{"10.0.0.0/8", "::1"}}
			}},
		{"loading timeout", ``, []string{"MSS_LOGIN_LOADING_TIMEOUT_SECONDS", "30"},
			func(c *Config) (any, any) { return c.LoadingScreen.TimeoutSeconds, 30 }},
		{"empty variable counts as unset", `{"debug_mode": true}`, []string{"DEBUG_MODE", ""},
			func(c *Config) (any, any) { return c.DebugMode, true }},
		{"data dir from env", ``, []string{"MSS_LOGIN_DATA_DIR", "/srv/mss"},
			func(c *Config) (any, any) {
				return []string{c.DataDir, c.SQLitePath()}, []string{"/srv/mss", "/srv/mss/data/mss_login_data.db"}
			}},
		{"sqlite path from env", ``, []string{"USERS_DB_SQLITE_PATH", "/var/lib/x.db"},
			func(c *Config) (any, any) { return c.SQLitePath(), "/var/lib/x.db" }},
		{"host base url from env", ``, []string{"HOST_BASE_URL", "https://comfy.example.com"},
			func(c *Config) (any, any) { return c.HostBaseURL, "https://comfy.example.com" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := mustLoad(t, tt.file, env(tt.env...))
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestAliasesAreNormalised(t *testing.T) {
	tests := []struct {
		file  string
		env   []string
		check func(*Config) (got, want any)
	}{
		{`{"users_db": {"backend": "postgres"}}`, nil, func(c *Config) (any, any) { return c.UsersDB.Backend, "postgresql" }},
		{`{"users_db": {"backend": "PostgreSQL"}}`, nil, func(c *Config) (any, any) { return c.UsersDB.Backend, "postgresql" }},
		{``, []string{"USERS_DB_BACKEND", "postgres"}, func(c *Config) (any, any) { return c.UsersDB.Backend, "postgresql" }},
		{`{"users_db": {"encryption_level": "high"}}`, nil, func(c *Config) (any, any) { return c.UsersDB.EncryptionLevel, "secure" }},
		{`{"users_db": {"encryption_level": "medium"}}`, nil, func(c *Config) (any, any) { return c.UsersDB.EncryptionLevel, "standard" }},
		{``, []string{"USERS_DB_ENCRYPTION_LEVEL", "HIGH"}, func(c *Config) (any, any) { return c.UsersDB.EncryptionLevel, "secure" }},
		{`{"users_db": {"encryption_level": ""}}`, nil, func(c *Config) (any, any) { return c.UsersDB.EncryptionLevel, "" }},
		{`{"token_algorithm": "hs256"}`, nil, func(c *Config) (any, any) { return c.TokenAlgorithm, "HS256" }},
		{`{"log_levels": ["info", "Debug"]}`, nil, func(c *Config) (any, any) { return c.LogLevels, []string{"INFO", "DEBUG"} }},
		{`{"auto_update": {"mode": "auto"}}`, nil, func(c *Config) (any, any) { return c.AutoUpdate.Mode, "notify" }},
	}
	for _, tt := range tests {
		t.Run(tt.file+strings.Join(tt.env, "="), func(t *testing.T) {
			cfg, _ := mustLoad(t, tt.file, env(tt.env...))
			if got, want := tt.check(cfg); !reflect.DeepEqual(got, want) {
				t.Errorf("got %#v, want %#v", got, want)
			}
		})
	}
}

func TestWarnings(t *testing.T) {
	_, rep := mustLoad(t, `{"auto_update": {"mode": "auto"}, "debug_mode": true, "users_db": {"backend": "mysql"}}`,
		env("SECRET_KEY", secretKey, "USERS_DB_POSTGRES_HOST", "a", "POSTGRES_HOST", "b"))
	all := strings.Join(rep.Warnings, "\n")
	for _, want := range []string{
		`config.json: auto_update.mode: "auto" is treated as "notify"`,
		"config.json: debug_mode: ",
		"never logged",
		"USERS_DB_POSTGRES_HOST and POSTGRES_HOST are both set and differ",
		"no database password is set (USERS_DB_PASSWORD or MYSQL_PASSWORD)",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("warnings lack %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "SECRET_KEY") {
		t.Errorf("SECRET_KEY is set but warned about:\n%s", all)
	}
}

func TestRejected(t *testing.T) {
	tests := []struct {
		name string
		file string
		env  []string
		want []string // each must appear in the error
	}{
		{"unknown key", `{"blacklist_after_attemps": 3}`, nil,
			[]string{`config.json: unknown key "blacklist_after_attemps" (did you mean "blacklist_after_attempts"?)`}},
		{"nested unknown key", `{"users_db": {"postgres_prot": 1}}`, nil,
			[]string{`config.json: unknown key "users_db.postgres_prot" (did you mean "users_db.postgres_port"?)`}},
		{"key at the wrong level", `{"postgres_port": 5432}`, nil,
			[]string{`unknown key "postgres_port" (did you mean "users_db.postgres_port"?)`}},
		{"unknown key without suggestion", `{"s3_storage": {"mount": {"zzzzzz": 1}}}`, nil,
			[]string{`config.json: unknown key "s3_storage.mount.zzzzzz"`}},
		// The original's own spelling is accepted and ignored: never offered as the fix.
		{"unknown key like an ignored one", `{"separate_users": true}`, nil,
			[]string{`unknown key "separate_users" (the original's key "seperate_users" is accepted and ignored by mss-login)`}},
		{"port out of range", `{"listen_address": ":99999"}`, nil,
			[]string{"listen_address: the port must be a number from 0 to 65535"}},
		{"port not a number", `{"metrics_address": "127.0.0.1:http"}`, nil,
			[]string{"metrics_address: the port must be a number"}},
		{"number as string", `{"users_db": {"postgres_port": "5432"}}`, nil,
			[]string{"config.json: users_db.postgres_port: expected a number, got a string"}},
		{"object for a string", `{"upstream_url": {"a": 1}}`, nil,
			[]string{"config.json: upstream_url: expected a string, got an object"}},
		{"string for an object", `{"users_db": "sqlite"}`, nil,
			[]string{"config.json: users_db: expected an object, got a string"}},
		{"fraction for an integer", `{"blacklist_expiry_hours": 1.5}`, nil,
			[]string{"config.json: blacklist_expiry_hours: expected a whole number, got 1.5"}},
		{"bad list element", `{"trusted_proxies": ["10.0.0.1", 7]}`, nil,
			[]string{"config.json: trusted_proxies[1]: expected a string, got a number"}},
		{"port out of range", `{"users_db": {"postgres_port": 70000}}`, nil,
			[]string{"config.json: users_db.postgres_port: must be between 1 and 65535, got 70000"}},
		{"env port out of range", ``, []string{"USERS_DB_POSTGRES_PORT", "0"},
			[]string{"environment USERS_DB_POSTGRES_PORT (sets users_db.postgres_port): must be between 1 and 65535, got 0"}},
		{"negative attempts", `{"blacklist_after_attempts": -1}`, nil,
			[]string{"config.json: blacklist_after_attempts: must be 0 (lockout off) or more, got -1"}},
		{"zero hours", `{"blacklist_expiry_hours": 0, "auto_update": {"check_interval_hours": 0}}`, nil,
			[]string{"config.json: blacklist_expiry_hours: must be more than 0", "config.json: auto_update.check_interval_hours: must be more than 0"}},
		{"token lifetime above max", `{"access_token_expiration_hours": 9000}`, nil,
			[]string{"config.json: access_token_expiration_hours: 9000 is more than max_access_token_expiration_hours (8760, from config.defaults.json)"}},
		{"huge duration", `{"session_idle_revoke_minutes": 9000000000000}`, nil,
			[]string{"config.json: session_idle_revoke_minutes: must be at most"}},
		{"max_open_connections", `{"users_db": {"max_open_connections": 0}}`, nil,
			[]string{"users_db.max_open_connections: must be between 1 and 1000"}},
		{"loading timeout", ``, []string{"MSS_LOGIN_LOADING_TIMEOUT_SECONDS", "301"},
			[]string{"environment MSS_LOGIN_LOADING_TIMEOUT_SECONDS (sets loading_screen.timeout_seconds): must be between 1 and 300, got 301"}},
		{"lockout mirror", `{"lockout_mirror": {"max_objects": 100001}}`, nil,
			[]string{"lockout_mirror.max_objects: must be between 1 and 100000"}},
		{"s3 interval", `{"s3_storage": {"mount": {"sync_interval_seconds": 0}, "workflow_sync": {"sync_interval_seconds": -5}}}`, nil,
			[]string{"s3_storage.mount.sync_interval_seconds: must be more than 0", "s3_storage.workflow_sync.sync_interval_seconds: must be more than 0, got -5"}},
		{"bad CIDR with index", `{"trusted_proxies": ["10.0.0.1", "10.0.0.0/33", "fe80::1%eth0"], "local_network_cidrs": ["nope"]}`, nil,
			[]string{`config.json: trusted_proxies[1]: "10.0.0.0/33": not a valid CIDR`,
				`config.json: trusted_proxies[2]: "fe80::1%eth0": IPv6 zones are not allowed`,
				`config.json: local_network_cidrs[0]: "nope": not a valid IP address or CIDR`}},
		{"bad recovery host from env", ``, []string{"RECOVERY_MODE_HOST", "127.0.0.1,localhost"},
			[]string{`environment RECOVERY_MODE_HOST (sets recovery_mode_hosts[1])`, `"localhost": not a valid IP address or CIDR`}},
		{"bad enums", `{"users_db": {"backend": "oracle", "postgres_sslmode": "maybe", "mysql_tls": "yes"}, "auto_update": {"check_mode": "tags"}, "login_background": {"source": "s3", "media_kind": "gif"}, "s3_storage": {"workflow_sync": {"conflict_strategy": "merge"}}, "log_levels": ["INFO", "TRACE"]}`, nil,
			[]string{`config.json: users_db.backend: must be one of sqlite, postgresql, mysql, got "oracle"`,
				`users_db.postgres_sslmode: must be one of disable, allow, prefer, require, verify-ca, verify-full, got "maybe"`,
				`users_db.mysql_tls: must be one of true, false, skip-verify, preferred, got "yes"`,
				`auto_update.check_mode: must be one of releases, branch`,
				`login_background.source: must be one of url, local`,
				`login_background.media_kind: must be one of auto, image, video`,
				`s3_storage.workflow_sync.conflict_strategy: must be one of newer_wins, local_wins, s3_wins`,
				`config.json: log_levels[1]: must be one of INFO, WARNING, ERROR, DEBUG, got "TRACE"`}},
		{"bad encryption level", `{"users_db": {"encryption_level": "ultra"}}`, nil,
			[]string{`users_db.encryption_level: must be one of "", low, standard, secure, got "ultra"`}},
		{"bad env enum", ``, []string{"USERS_DB_BACKEND", "mongo"},
			[]string{`environment USERS_DB_BACKEND (sets users_db.backend): must be one of sqlite, postgresql, mysql, got "mongo"`}},
		{"asymmetric algorithm", `{"token_algorithm": "RS256"}`, nil,
			[]string{`config.json: token_algorithm: must be HS256, got "RS256": the signing key is SECRET_KEY, a shared secret`}},
		{"password in the file", `{"users_db": {"password": "x", "postgres_password": "y", "mysql_password": "z", "replica_password": "w"}}`, nil,
			[]string{"config.json: users_db.password: database passwords are read from the environment only (USERS_DB_PASSWORD, POSTGRES_PASSWORD or MYSQL_PASSWORD)",
				"config.json: users_db.postgres_password: database passwords",
				"config.json: users_db.mysql_password: database passwords",
				"config.json: users_db.replica_password: database passwords"}},
		{"bad env bool", ``, []string{"DEBUG_MODE", "maybe"},
			[]string{`environment DEBUG_MODE (sets debug_mode): "maybe" is not a boolean (use true/false, 1/0, yes/no or on/off)`}},
		{"bad env int", ``, []string{"POSTGRES_PORT", "54x"},
			[]string{`environment POSTGRES_PORT (sets users_db.postgres_port): "54x" is not a whole number`}},
		{"short SECRET_KEY", ``, []string{"SECRET_KEY", "too-short"},
			[]string{"environment SECRET_KEY: the secret key (named by secret_key_env) must be at least 32 characters long"}},
		{"short renamed secret key", `{"secret_key_env": "MY_KEY"}`, []string{"MY_KEY", "short"},
			[]string{"environment MY_KEY: the secret key"}},
		{"bad secret_key_env", `{"secret_key_env": "MY-KEY"}`, nil,
			[]string{`config.json: secret_key_env: must be the name of an environment variable`}},
		{"bad release check keys", `{"auto_update": {"token_env": "GH TOKEN", "changelog_raw_base_url": "raw.example"}}`, nil,
			[]string{`config.json: auto_update.token_env: must be the name of an environment variable (letters, digits and _), got "GH TOKEN"`,
				`config.json: auto_update.changelog_raw_base_url: must be an absolute http:// or https:// URL with a host, got "raw.example"`}},
		{"HOST_BASE_URL without scheme", ``, []string{"HOST_BASE_URL", "comfy.example.com"},
			[]string{`environment HOST_BASE_URL (sets host_base_url): must be an absolute http:// or https:// URL with a host, got "comfy.example.com"`}},
		{"bad URLs", `{"upstream_url": "ftp://x", "auto_update": {"check_url": "/relative"}, "s3_storage": {"endpoint_url": "https://"}}`, nil,
			[]string{`config.json: upstream_url: must be an absolute http:// or https:// URL with a host, got "ftp://x"`,
				`config.json: auto_update.check_url: must be an absolute http:// or https:// URL`,
				`config.json: s3_storage.endpoint_url: must be an absolute http:// or https:// URL`}},
		{"empty upstream", `{"upstream_url": ""}`, nil, []string{"config.json: upstream_url: must not be empty"}},
		{"URL password is masked", `{"upstream_url": "ftp://user:hunter2hunter2@x"}`, nil,
			[]string{`got "ftp://user:xxxxx@x"`}},
		{"bad listen address", `{"listen_address": "8080", "metrics_address": "localhost"}`, nil,
			[]string{`config.json: listen_address: must be host:port or :port, got "8080"`, `config.json: metrics_address: must be host:port`}},
		{"same listen and metrics", `{"metrics_address": ":8080"}`, nil,
			[]string{`config.json: metrics_address: must differ from listen_address (":8080")`}},
		{"sqlite path escapes", `{"users_db": {"sqlite_path": "../outside.db"}}`, nil,
			[]string{`config.json: users_db.sqlite_path: relative path "../outside.db" leaves the data directory`}},
		{"sqlite path escapes from env", ``, []string{"USERS_DB_SQLITE_PATH", "data/../../x.db"},
			[]string{`environment USERS_DB_SQLITE_PATH (sets users_db.sqlite_path): relative path`}},
		{"model folder with a slash", `{"s3_storage": {"mount": {"model_folders": ["loras", "../etc"]}}}`, nil,
			[]string{`config.json: s3_storage.mount.model_folders: entry 1 ("../etc") must be a single folder name`}},
		{"backend needs its settings", `{"users_db": {"backend": "postgresql", "postgres_host": ""}}`, nil,
			[]string{"config.json: users_db.postgres_host: must not be empty when users_db.backend is postgresql"}},
		{"invalid JSON", "{\n  \"debug_mode\": tru\n}", nil,
			[]string{"config.json: invalid JSON at line 2, column"}},
		{"truncated JSON", `{"debug_mode": true`, nil, []string{"config.json: invalid JSON"}},
		{"trailing data", `{} {}`, nil, []string{"config.json: unexpected data after the top-level value"}},
		{"duplicate key", `{"users_db": {"backend": "sqlite", "backend": "mysql"}}`, nil,
			[]string{`config.json: duplicate key "users_db.backend"`}},
		{"not an object", `[1, 2]`, nil, []string{"config.json: expected a JSON object at the top level, got an array"}},
		{"too deep", strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), nil,
			[]string{"nested deeper than"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, rep, err := LoadBytes([]byte(tt.file), "config.json", env(tt.env...))
			if err == nil {
				t.Fatal("accepted, want an error")
			}
			if cfg != nil || rep == nil {
				t.Errorf("on error got cfg=%v rep=%v, want nil config and a report", cfg != nil, rep)
			}
			for _, want := range tt.want {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q:\n%v", want, err)
				}
			}
		})
	}
}

func TestAllProblemsReportedAtOnce(t *testing.T) {
	file := `{
		"blacklist_after_attempts": "ten",
		"nope": 1,
		"users_db": {"backend": "oracle", "password": "x", "mysql_port": 0},
		"trusted_proxies": ["1.2.3.4", "bad"]
	}`
	_, _, err := LoadBytes([]byte(file), "config.json", env("DEBUG_MODE", "maybe", "SECRET_KEY", "short"))
	if err == nil {
		t.Fatal("accepted")
	}
	var joined interface{ Unwrap() []error }
	if !errors.As(err, &joined) {
		t.Fatalf("error is not a joined error: %T", err)
	}
	wantKeys := []string{
		"blacklist_after_attempts", `"nope"`, "users_db.backend", "users_db.password", "users_db.mysql_port",
		"trusted_proxies[1]", "DEBUG_MODE", "environment SECRET_KEY",
	}
	if got := len(joined.Unwrap()); got != len(wantKeys) {
		t.Errorf("%d problems reported, want %d:\n%v", got, len(wantKeys), err)
	}
	for _, k := range wantKeys {
		if !strings.Contains(err.Error(), k) {
			t.Errorf("error does not name %s:\n%v", k, err)
		}
	}
}

func TestIgnoredKeys(t *testing.T) {
	// An original config.json: every key it had is still there, plus some that mean nothing here.
	file := `{
		"log": "mss-login.log",
		"log_rotation": {"max_bytes": 1, "archive_dir": "logs"},
		"whitelist": "data/whitelist.txt",
		"seperate_users": false,
		"experimental_failsafe": {"last_failure_reason": "` + failsafeValue + `"},
		"experimental": {"mfa": true, "model_isolation": "` + failsafeValue + `", "tailscale_local_auth": true},
		"quarantine": 7,
		"trash": null,
		"api_token_store": {"backend": "json"},
		"blacklist_after_attempts": 5
	}`
	cfg, rep := mustLoad(t, file, env("NTFY_API_KEY", ntfyToken, "AUTO_INSTALL_DEPS", "true", "EXPERIMENTAL_MODEL_ISOLATION", "1"))
	want := []string{
		"api_token_store", "environment AUTO_INSTALL_DEPS", "environment EXPERIMENTAL_MODEL_ISOLATION",
		"experimental.model_isolation", "experimental.tailscale_local_auth",
		"experimental_failsafe", "log", "log_rotation", "quarantine", "seperate_users", "whitelist",
	}
	if !slices.Equal(rep.Ignored, want) {
		t.Errorf("Ignored =\n%q\nwant\n%q", rep.Ignored, want)
	}
	if !cfg.Experimental.MFA || cfg.BlacklistAfterAttempts != 5 {
		t.Error("known keys next to ignored ones were not applied")
	}
	out, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	printed := string(out) + fmt.Sprintf("%v %+v %#v", cfg, cfg, cfg) + strings.Join(rep.Warnings, " ")
	for _, v := range []string{ntfyToken, failsafeValue, "model_isolation"} {
		if strings.Contains(printed, v) {
			t.Errorf("ignored key or value %q appears in the output", v)
		}
	}

	// The ntfy token in the file is refused, without its value.
	_, _, err = LoadBytes([]byte(`{"ntfy": {"api_token": "`+ntfyToken+`"}}`), "config.json", env())
	if err == nil || strings.Contains(err.Error(), ntfyToken) || !strings.Contains(err.Error(), "ntfy.api_token: the ntfy token is read from the environment only") {
		t.Errorf("error = %v, want the ntfy token refused without its value", err)
	}
}

func TestNotificationKeys(t *testing.T) {
	cfg, _ := mustLoad(t, `{"ntfy": {"topic": "studio_alerts-1", "base_url": "http://127.0.0.1:8090", "enabled_events": ["ip_banned"]},
		"webhooks": [{"name": "ops", "url": "https://hooks.example.com/services/T000/B000/XXXX", "secret_env": "OPS_HOOK_KEY", "events": ["user_created"]},
		             {"name": "tickets", "url": "http://localhost:9000/in"}]}`,
		env("NTFY_API_TOKEN", ntfyToken, "OPS_HOOK_KEY", "hook-key-Zq9"))
	if cfg.Ntfy.Topic != "studio_alerts-1" || cfg.NtfyToken.Reveal() != ntfyToken || len(cfg.Webhooks) != 2 ||
		cfg.Webhooks[0].Secret.Reveal() != "hook-key-Zq9" || cfg.Webhooks[1].Secret.IsSet() || cfg.Notifications.BurstThreshold != 3 {
		t.Fatalf("loaded %+v", cfg)
	}
	out, _ := cfg.Redacted()
	for _, s := range []string{"T000/B000/XXXX", "hook-key-Zq9", ntfyToken} {
		if strings.Contains(string(out), s) {
			t.Errorf("the effective configuration shows %q:\n%s", s, out)
		}
	}
	for _, c := range []struct{ file, want string }{
		{`{"ntfy": {"topic": "a b"}}`, `config.json: ntfy.topic: must be 1 to 64 letters`},
		{`{"ntfy": {"topic": "t", "base_url": "http://ntfy.example.com"}}`, `ntfy.base_url: must be https:// (http:// only to a loopback address), got "http://ntfy.example.com"`},
		{`{"ntfy": {"enabled_events": ["ip_baned"]}}`, `ntfy.enabled_events[0]: unknown event "ip_baned"; one of`},
		{`{"webhooks": [{"name": "Ops", "url": "https://x.example"}]}`, `webhooks[0].name: must be 1 to 40 lower-case`},
		{`{"webhooks": [{"name": "a", "url": "https://x.example"}, {"name": "a", "url": "https://y.example"}]}`, `webhooks[1].name: "a" is the name of an earlier webhook`},
		{`{"webhooks": [{"name": "a"}]}`, `webhooks[0].url: must not be empty`},
		{`{"webhooks": [{"name": "a", "url": "http://hooks.example/secret-path"}]}`, `webhooks[0].url: must be https://`},
		{`{"webhooks": [{"name": "a", "url": "https://x.example", "events": ["nope"]}]}`, `webhooks[0].events[0]: unknown event "nope"`},
		{`{"webhooks": [{"name": "a", "url": "https://x.example", "sekret_env": "X"}]}`, `unknown key "webhooks[0].sekret_env"`},
		{`{"webhooks": ["https://x.example"]}`, `webhooks[0]: expected an object, got a string`},
		{`{"notifications": {"burst_threshold": 0}}`, `notifications.burst_threshold`},
	} {
		_, _, err := LoadBytes([]byte(c.file), "config.json", env())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want %q", c.file, err, c.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-path") {
			t.Errorf("%s: the error shows the URL's path: %v", c.file, err)
		}
	}
	// A secret_env that is not set: a warning, unsigned.
	_, rep, err := LoadBytes([]byte(`{"webhooks": [{"name": "a", "url": "https://x.example", "secret_env": "NOT_SET_HERE"}]}`), "config.json", env())
	if err != nil || !strings.Contains(strings.Join(rep.Warnings, "\n"), "NOT_SET_HERE is not set; this webhook's requests are not signed") {
		t.Errorf("unset secret_env: %v %v", rep.Warnings, err)
	}
}

// allSecretsEnv sets every secret-bearing variable.
func allSecretsEnv(extra ...string) func(string) (string, bool) {
	return env(append([]string{
		"SECRET_KEY", secretKey, "USERS_DB_PASSWORD", dbPassword, "POSTGRES_PASSWORD", pgPassword,
		"S3_ACCESS_KEY_ID", s3KeyID, "S3_SECRET_ACCESS_KEY", s3SecretKey, "NTFY_API_KEY", ntfyToken,
		"MSS_LOGIN_RELEASE_TOKEN", releaseToken, "OIDC_CLIENT_SECRET", oidcSecret,
	}, extra...)...)
}

func TestSecretsNeverPrinted(t *testing.T) {
	cfg, _ := mustLoad(t, `{"users_db": {"backend": "postgres"}}`, allSecretsEnv())

	// Read where needed…
	for _, c := range []struct{ got, want string }{
		{cfg.SecretKey.Reveal(), secretKey},
		{cfg.DatabasePassword.Reveal(), dbPassword}, // USERS_DB_PASSWORD wins over POSTGRES_PASSWORD
		{cfg.S3AccessKeyID.Reveal(), s3KeyID},
		{cfg.S3SecretAccessKey.Reveal(), s3SecretKey},
		{cfg.ReleaseToken.Reveal(), releaseToken},
		{cfg.NtfyToken.Reveal(), ntfyToken},
	} {
		if c.got != c.want {
			t.Errorf("Reveal() = %q, want %q", c.got, c.want)
		}
	}

	// …and nowhere else.
	out, err := cfg.Redacted()
	if err != nil {
		t.Fatal(err)
	}
	marshalled, _ := json.Marshal(cfg)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("cfg", "key", cfg.SecretKey, "cfg", cfg)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("cfg", "key", cfg.SecretKey, "pw", cfg.DatabasePassword)
	printed := map[string]string{
		"Redacted":     string(out),
		"%v":           fmt.Sprintf("%v", cfg),
		"%+v":          fmt.Sprintf("%+v", cfg),
		"%#v":          fmt.Sprintf("%#v", cfg),
		"%v value":     fmt.Sprintf("%v", *cfg),
		"%s %q %x %d":  fmt.Sprintf("%s %q %x %d", cfg.SecretKey, cfg.SecretKey, cfg.SecretKey, cfg.SecretKey),
		"Println":      fmt.Sprintln(cfg.SecretKey, cfg.DatabasePassword, cfg.S3AccessKeyID, cfg.S3SecretAccessKey),
		"json.Marshal": string(marshalled),
		"slog":         logged.String(),
	}
	for where, text := range printed {
		for _, s := range []string{secretKey, dbPassword, pgPassword, s3KeyID, s3SecretKey, ntfyToken, releaseToken, oidcSecret} {
			if strings.Contains(text, s) {
				t.Errorf("%s prints a secret:\n%s", where, text)
			}
		}
	}
	var view struct {
		Environment map[string]string `json:"environment"`
	}
	if err := json.Unmarshal(out, &view); err != nil {
		t.Fatal(err)
	}
	wantEnv := map[string]string{"SECRET_KEY": "set", "database_password": "set", "S3_ACCESS_KEY_ID": "set", "S3_SECRET_ACCESS_KEY": "set", "MSS_LOGIN_RELEASE_TOKEN": "set", "NTFY_API_TOKEN": "set", "OIDC_CLIENT_SECRET": "set"}
	if !reflect.DeepEqual(view.Environment, wantEnv) {
		t.Errorf("environment = %v, want %v", view.Environment, wantEnv)
	}
	if !strings.Contains(printed["%+v"], "SecretKey:[redacted]") {
		t.Errorf("%%+v does not show the redaction marker: %s", printed["%+v"])
	}

	// Secrets stay out of errors, whatever else is wrong.
	_, _, err = LoadBytes([]byte(`{"users_db": {"password": "`+dbPassword+`"}, "ntfy": {"api_token": "`+ntfyToken+`"}, "bad": 1}`),
		"config.json", allSecretsEnv("DEBUG_MODE", "nope"))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, s := range []string{secretKey, dbPassword, pgPassword, s3KeyID, s3SecretKey, ntfyToken, releaseToken} {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error contains a secret: %v", err)
		}
	}
	_, _, err = LoadBytes(nil, "", env("SECRET_KEY", "short-secret-value"))
	if err == nil || strings.Contains(err.Error(), "short-secret-value") {
		t.Errorf("short SECRET_KEY error = %v", err)
	}
}

func TestDatabasePasswordByBackend(t *testing.T) {
	tests := []struct {
		backend string
		env     []string
		want    string
	}{
		{"postgresql", []string{"POSTGRES_PASSWORD", pgPassword, "MYSQL_PASSWORD", "m"}, pgPassword},
		{"mysql", []string{"POSTGRES_PASSWORD", pgPassword, "MYSQL_PASSWORD", "m"}, "m"},
		{"mysql", []string{"USERS_DB_PASSWORD", dbPassword, "MYSQL_PASSWORD", "m"}, dbPassword},
		{"sqlite", []string{"POSTGRES_PASSWORD", pgPassword}, ""},
	}
	for _, tt := range tests {
		cfg, _ := mustLoad(t, `{"users_db": {"backend": "`+tt.backend+`"}}`, env(tt.env...))
		if got := cfg.DatabasePassword.Reveal(); got != tt.want {
			t.Errorf("%s with %v: password %q, want %q", tt.backend, tt.env, got, tt.want)
		}
	}
}

func TestSecretFormatting(t *testing.T) {
	var empty Secret
	set := Secret("value")
	for _, c := range []struct{ got, want string }{
		{fmt.Sprint(set), redacted}, {fmt.Sprint(empty), ""},
		{fmt.Sprintf("%#v", set), redacted}, {set.GoString(), redacted},
		{set.String(), redacted}, {empty.String(), ""},
		{fmt.Sprintf("%q", set), redacted},
		{set.Reveal(), "value"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	for _, s := range []Secret{set, empty} {
		j, _ := json.Marshal(s)
		txt, _ := s.MarshalText()
		if want, _ := json.Marshal(s.String()); !bytes.Equal(j, want) || string(txt) != s.String() {
			t.Errorf("MarshalJSON %s, MarshalText %s for %q", j, txt, s.String())
		}
	}
}

func TestSQLitePath(t *testing.T) {
	tests := []struct {
		path    string
		want    string
		wantErr bool
	}{
		{"data/mss_login_data.db", "/srv/mss/data/mss_login_data.db", false},
		{"db.sqlite", "/srv/mss/db.sqlite", false},
		{"data/../db.sqlite", "/srv/mss/db.sqlite", false},
		{"/var/lib/mss/users.db", "/var/lib/mss/users.db", false},
		{"/var/lib/../mss/users.db", "/var/mss/users.db", false},
		{"../users.db", "", true},
		{"data/../../users.db", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			file, _ := json.Marshal(map[string]any{"users_db": map[string]any{"sqlite_path": tt.path}})
			cfg, _, err := LoadBytes(file, "config.json", env("MSS_LOGIN_DATA_DIR", "/srv/mss"))
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "users_db.sqlite_path") {
					t.Fatalf("err = %v, want one naming users_db.sqlite_path", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.SQLitePath(); got != tt.want {
				t.Errorf("SQLitePath() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParsedAddressLists(t *testing.T) {
	cfg, _ := mustLoad(t, `{"trusted_proxies": ["10.1.2.3/8", "192.168.1.1", " 2001:db8::1 ", "::ffff:10.0.0.9", "2001:db8::/32"]}`, env())
	want := []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.168.1.1/32"),
		netip.MustParsePrefix("2001:db8::1/128"), netip.MustParsePrefix("10.0.0.9/32"),
		netip.MustParsePrefix("2001:db8::/32"),
	}
	if got := cfg.ParsedTrustedProxies(); !slices.Equal(got, want) {
		t.Errorf("ParsedTrustedProxies() = %v, want %v", got, want)
	}
	if got := cfg.ParsedRecoveryModeHosts(); !slices.Equal(got, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("::1/128")}) {
		t.Errorf("ParsedRecoveryModeHosts() = %v", got)
	}
	if got := cfg.ParsedLocalNetworkCIDRs(); len(got) != 0 {
		t.Errorf("ParsedLocalNetworkCIDRs() = %v, want empty", got)
	}
}

func TestLoadFindsTheFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("config.json", `{"blacklist_after_attempts": 4}`)
	explicit := write("other.json", `{"blacklist_after_attempts": 6, "nope": true}`)

	// No --config: $MSS_LOGIN_DATA_DIR/config.json.
	cfg, rep, err := Load(LoadOptions{Env: env("MSS_LOGIN_DATA_DIR", dir)})
	if err != nil || cfg.BlacklistAfterAttempts != 4 || rep.File != filepath.Join(dir, "config.json") {
		t.Errorf("data dir config: err=%v rep=%+v", err, rep)
	}
	// No --config and no config.json there: defaults.
	cfg, rep, err = Load(LoadOptions{Env: env("MSS_LOGIN_DATA_DIR", t.TempDir())})
	if err != nil || cfg.BlacklistAfterAttempts != 10 || rep.File != "" {
		t.Errorf("no config: err=%v rep=%+v", err, rep)
	}
	// --config: errors are labelled with its path.
	_, _, err = Load(LoadOptions{File: explicit, Env: env()})
	if err == nil || !strings.Contains(err.Error(), explicit+`: unknown key "nope"`) {
		t.Errorf("explicit file: err=%v", err)
	}
	// A missing --config is an error only when required.
	missing := filepath.Join(dir, "missing.json")
	if _, _, err := Load(LoadOptions{File: missing, Env: env(), RequireFile: true}); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Errorf("required missing file: err=%v", err)
	}
	cfg, rep, err = Load(LoadOptions{File: missing, Env: env()})
	if err != nil || cfg == nil || len(rep.Warnings) == 0 || !strings.Contains(rep.Warnings[0], "does not exist") {
		t.Errorf("optional missing file: err=%v rep=%+v", err, rep)
	}
	// An empty file is a warning, not an error.
	cfg, rep, err = Load(LoadOptions{File: write("empty.json", " \n"), Env: env()})
	if err != nil || cfg == nil || !strings.Contains(strings.Join(rep.Warnings, "\n"), "is empty") {
		t.Errorf("empty file: err=%v rep=%+v", err, rep)
	}
	// HOME unknown and no MSS_LOGIN_DATA_DIR.
	if _, _, err := Load(LoadOptions{Env: func(string) (string, bool) { return "", false }}); err == nil || !strings.Contains(err.Error(), "MSS_LOGIN_DATA_DIR") {
		t.Errorf("no home: err=%v", err)
	}
}

func FuzzLoadBytes(f *testing.F) {
	f.Add(msslogin.DefaultConfigJSON)
	f.Add([]byte(`{"users_db": {"backend": "postgres", "password": "x"}, "ntfy": {"api_token": "y"}}`))
	f.Add([]byte(`{"trusted_proxies": ["10.0.0.0/8", 1], "upstream_url": "http://u:p@h"}`))
	f.Add([]byte(`{"secret_key_env": "USERS_DB_PASSWORD", "s3_storage": {"access_key_id_env": "SECRET_KEY"}}`))
	f.Add([]byte(`[{"a": null}]`))
	f.Add([]byte(`{"a":{"a":{"a":{"a":{"a":1}}}}}`))
	f.Add([]byte(""))
	e := allSecretsEnv()
	secrets := []string{secretKey, dbPassword, pgPassword, s3KeyID, s3SecretKey, ntfyToken, releaseToken}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, rep, err := LoadBytes(data, "config.json", e)
		if rep == nil {
			t.Fatal("nil report")
		}
		if (cfg == nil) == (err == nil) {
			t.Fatalf("cfg=%v err=%v: exactly one must be nil", cfg != nil, err)
		}
		var printed string
		if err != nil {
			printed = err.Error()
		} else {
			out, merr := cfg.Redacted()
			if merr != nil {
				t.Fatal(merr)
			}
			printed = string(out) + fmt.Sprintf("%+v %#v", cfg, cfg)
		}
		printed += strings.Join(rep.Warnings, "\n") + strings.Join(rep.Ignored, "\n")
		for _, s := range secrets {
			if strings.Contains(printed, s) && !bytes.Contains(data, []byte(s)) {
				t.Fatalf("secret %q printed:\n%s", s, printed)
			}
		}
	})
}

func TestOIDCKeys(t *testing.T) {
	cfg, _ := mustLoad(t, `{"oidc": {"issuer": "https://idp.example.com/realms/studio", "client_id": "comfy",
		"group_roles": [{"group": "comfy-admins", "role": "admin"}, {"group": "artists", "role": "user"}]}}`, env("OIDC_CLIENT_SECRET", oidcSecret))
	if !cfg.OIDC.Enabled() || cfg.OIDC.ClientSecret.Reveal() != oidcSecret || cfg.OIDC.Users != "create" || !cfg.OIDC.PasswordLogin {
		t.Fatalf("loaded %+v", cfg.OIDC)
	}
	for groups, want := range map[string]string{"artists comfy-admins": "admin", "artists": "user", "other": "", "": ""} {
		if got := cfg.OIDC.RoleFor(strings.Fields(groups)); got != want {
			t.Errorf("RoleFor(%q) = %q, want %q (the first entry the user matches)", groups, got, want)
		}
	}
	for _, c := range []struct{ file, want string }{
		{`{"oidc": {"issuer": "http://idp.example.com", "client_id": "c", "group_roles": [{"group": "g", "role": "user"}]}}`, `oidc.issuer: must be https://`},
		{`{"oidc": {"issuer": "https://idp.example.com", "group_roles": [{"group": "g", "role": "user"}]}}`, `oidc.client_id: must not be empty`},
		{`{"oidc": {"issuer": "https://idp.example.com", "client_id": "c"}}`, `oidc.group_roles: must map at least one group`},
		{`{"oidc": {"issuer": "https://idp.example.com", "client_id": "c", "group_roles": [{"group": "g"}]}}`, `oidc.group_roles[0]: needs a group and a role`},
		{`{"oidc": {"issuer": "https://idp.example.com", "client_id": "c", "users": "all", "group_roles": [{"group": "g", "role": "user"}]}}`, `oidc.users: must be create or existing`},
		{`{"oidc": {"issuer": "https://idp.example.com", "client_id": "c", "scopes": ["profile"], "group_roles": [{"group": "g", "role": "user"}]}}`, `oidc.scopes: must include openid`},
		{`{"oidc": {"issuer": "https://idp.example.com", "client_id": "c", "require_amr": ["mfa", "pwd"], "group_roles": [{"group": "g", "role": "user"}]}}`, `oidc.require_amr[1]: "pwd" is a password alone`},
	} {
		_, _, err := LoadBytes([]byte(c.file), "config.json", env("OIDC_CLIENT_SECRET", oidcSecret))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.file, err, c.want)
		}
	}
	_, _, err := LoadBytes([]byte(`{"oidc": {"issuer": "https://idp.example.com", "client_id": "c", "group_roles": [{"group": "g", "role": "user"}]}}`), "config.json", env())
	if err == nil || !strings.Contains(err.Error(), "OIDC_CLIENT_SECRET is not set") {
		t.Errorf("no client secret: %v", err)
	}
}
