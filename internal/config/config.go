// Package config loads mss-login's configuration: the embedded config.defaults.json, then the
// user's config.json, then environment variables, in that order. Keys and variable names are the
// ones of the original ComfyUI node "MSS-Login", so an existing config.json keeps working; keys
// that mean nothing here are accepted and reported as ignored.
//
// Everything that can be wrong is reported at once, each problem naming the key and where the
// value came from. Secrets (SECRET_KEY, database password, S3 keys) are held as Secret, which
// never prints its value.
package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	msslogin "github.com/mss-login/mss-login"
)

// Config is the effective configuration. The JSON keys are exactly those of config.defaults.json.
type Config struct {
	SecretKeyEnv                  string          `json:"secret_key_env"`
	UsersDB                       UsersDB         `json:"users_db"`
	AccessTokenExpirationHours    int             `json:"access_token_expiration_hours"`
	MaxAccessTokenExpirationHours int             `json:"max_access_token_expiration_hours"`
	SessionIdleRevokeMinutes      int             `json:"session_idle_revoke_minutes"`
	LogLevels                     []string        `json:"log_levels"`
	BlacklistAfterAttempts        int             `json:"blacklist_after_attempts"`
	BlacklistExpiryHours          int             `json:"blacklist_expiry_hours"`
	FailureWindowMinutes          int             `json:"failure_window_minutes"`
	AuditRetentionDays            int             `json:"audit_retention_days"`
	ForceHTTPS                    bool            `json:"force_https"`
	CloudflareProxy               bool            `json:"cloudflare_proxy"`
	CloudflaredLocalBypass        bool            `json:"cloudflared_local_bypass"`
	RequireAuthForRemoteAPI       bool            `json:"require_auth_for_remote_api"`
	LocalNetworkCIDRs             []string        `json:"local_network_cidrs"`
	DebugMode                     bool            `json:"debug_mode"`
	AllowGuestJWT                 bool            `json:"allow_guest_jwt"`
	MFADisabled                   bool            `json:"mfa_disabled"`
	AutoUpdate                    AutoUpdate      `json:"auto_update"`
	TokenAlgorithm                string          `json:"token_algorithm"`
	ExperimentalFeatures          bool            `json:"experimental_features"`
	Experimental                  Experimental    `json:"experimental"`
	LoginBackground               LoginBackground `json:"login_background"`
	LoadingScreen                 LoadingScreen   `json:"loading_screen"`
	S3Storage                     S3Storage       `json:"s3_storage"`
	HostBaseURL                   string          `json:"host_base_url"`
	RecoveryMode                  bool            `json:"recovery_mode"`
	RecoveryModeHosts             []string        `json:"recovery_mode_hosts"`
	UpstreamURL                   string          `json:"upstream_url"`
	ListenAddress                 string          `json:"listen_address"`
	MetricsAddress                string          `json:"metrics_address"`
	TrustedProxies                []string        `json:"trusted_proxies"`
	LockoutMirror                 LockoutMirror   `json:"lockout_mirror"`
	Ntfy                          Ntfy            `json:"ntfy"`
	Webhooks                      []Webhook       `json:"webhooks"`
	Notifications                 Notifications   `json:"notifications"`
	OIDC                          OIDC            `json:"oidc"`
	ModelDownloads                ModelDownloads  `json:"model_downloads"`

	// Not from config.json.

	// DataDir is the absolute data directory: $MSS_LOGIN_DATA_DIR, else ~/.comfyui-mss-login.
	DataDir string `json:"-"`
	// File is the config file that was read; when none was, the one a user would create
	// ($MSS_LOGIN_DATA_DIR/config.json, or --config). Messages say to change a key there.
	File string `json:"-"`
	// SecretKey is the value of the variable named by secret_key_env (SECRET_KEY by default).
	SecretKey Secret `json:"-"`
	// DatabasePassword is USERS_DB_PASSWORD, else POSTGRES_PASSWORD or MYSQL_PASSWORD by backend.
	DatabasePassword Secret `json:"-"`
	// S3AccessKeyID and S3SecretAccessKey come from the variables named by
	// s3_storage.access_key_id_env and s3_storage.secret_access_key_env.
	S3AccessKeyID     Secret `json:"-"`
	S3SecretAccessKey Secret `json:"-"`
	// ReleaseToken comes from the variable named by auto_update.token_env.
	ReleaseToken Secret `json:"-"`
	// NtfyToken is the ntfy access token: NTFY_API_TOKEN, else the original's NTFY_API_KEY.
	NtfyToken Secret `json:"-"`

	sources map[string]string // dotted key → where its value came from (Source)
}

// UsersDB is users_db: which database holds users, sessions, tokens and lockouts.
type UsersDB struct {
	Backend            string `json:"backend"` // sqlite, postgresql or mysql (normalised)
	SQLitePath         string `json:"sqlite_path"`
	PostgresHost       string `json:"postgres_host"`
	PostgresPort       int    `json:"postgres_port"`
	PostgresDatabase   string `json:"postgres_database"`
	PostgresUser       string `json:"postgres_user"`
	PostgresSSLMode    string `json:"postgres_sslmode"`
	MySQLHost          string `json:"mysql_host"`
	MySQLPort          int    `json:"mysql_port"`
	MySQLDatabase      string `json:"mysql_database"`
	MySQLUser          string `json:"mysql_user"`
	MySQLTLS           string `json:"mysql_tls"`
	EncryptionLevel    string `json:"encryption_level"` // "", low, standard or secure (normalised)
	MaxOpenConnections int    `json:"max_open_connections"`
}

// AutoUpdate is auto_update: the release check. It only ever notifies.
type AutoUpdate struct {
	Enabled            bool   `json:"enabled"`
	Mode               string `json:"mode"`       // always "notify" after loading
	CheckMode          string `json:"check_mode"` // releases or branch
	CheckURL           string `json:"check_url"`
	CheckIntervalHours int    `json:"check_interval_hours"`
	Branch             string `json:"branch"`
	ChangelogURL       string `json:"changelog_url"`
	// ChangelogRawBaseURL serves <owner>/<repo>/<ref>/readme/changelogs/<version>.md, as
	// raw.githubusercontent.com does; configurable for GitHub Enterprise, mirrors and tests.
	ChangelogRawBaseURL string `json:"changelog_raw_base_url"`
	// TokenEnv names the variable holding a token for a private repository (Config.ReleaseToken).
	TokenEnv string `json:"token_env"`
}

// Experimental is experimental: per-feature switches under the experimental_features master switch.
type Experimental struct {
	MFA             bool `json:"mfa"`
	S3              bool `json:"s3"`
	LoadingScreen   bool `json:"loading_screen"`
	News            bool `json:"news"`
	LoginBackground bool `json:"login_background"`
}

// LoginBackground is login_background: an image or video behind the login form.
type LoginBackground struct {
	Enabled   bool   `json:"enabled"`
	Source    string `json:"source"` // url or local
	URL       string `json:"url"`
	LocalPath string `json:"local_path"` // under DataDir
	MediaKind string `json:"media_kind"` // auto, image or video
}

// LoadingScreen is loading_screen.
type LoadingScreen struct {
	TimeoutSeconds int `json:"timeout_seconds"`
}

// S3Storage is s3_storage. The credentials themselves are in Config.S3AccessKeyID and
// Config.S3SecretAccessKey.
type S3Storage struct {
	Enabled            bool         `json:"enabled"`
	EndpointURL        string       `json:"endpoint_url"`
	BucketName         string       `json:"bucket_name"`
	Region             string       `json:"region"`
	Prefix             string       `json:"prefix"`
	AccessKeyIDEnv     string       `json:"access_key_id_env"`
	SecretAccessKeyEnv string       `json:"secret_access_key_env"`
	Mount              S3Mount      `json:"mount"`
	WorkflowSync       WorkflowSync `json:"workflow_sync"`
}

// S3Mount is s3_storage.mount.
type S3Mount struct {
	Enabled             bool     `json:"enabled"`
	LocalMountPath      string   `json:"local_mount_path"`
	Mode                string   `json:"mode"` // auto, sync or mount
	SyncIntervalSeconds int      `json:"sync_interval_seconds"`
	ModelFolders        []string `json:"model_folders"`
	MountOutput         bool     `json:"mount_output"`
	MountInput          bool     `json:"mount_input"`
	ReadOnly            bool     `json:"read_only"`
	UsePathStyle        bool     `json:"use_path_style"`
}

// WorkflowSync is s3_storage.workflow_sync.
type WorkflowSync struct {
	Enabled             bool   `json:"enabled"`
	SyncIntervalSeconds int    `json:"sync_interval_seconds"`
	ConflictStrategy    string `json:"conflict_strategy"` // newer_wins, local_wins or s3_wins
	SyncOnSave          bool   `json:"sync_on_save"`
	SyncOnDelete        bool   `json:"sync_on_delete"`
	MaxWorkflowSizeMB   int    `json:"max_workflow_size_mb"`
}

// LockoutMirror is lockout_mirror: how many Lockout objects the operator keeps at most.
type LockoutMirror struct {
	MaxObjects int `json:"max_objects"`
}

// LoadOptions says where Load finds its inputs.
type LoadOptions struct {
	// File is an explicit config file (--config). Empty means $MSS_LOGIN_DATA_DIR/config.json
	// when that file exists, else no file.
	File string
	// Env looks up an environment variable; nil means os.LookupEnv.
	Env func(string) (string, bool)
	// RequireFile makes a missing explicit File an error instead of a warning.
	RequireFile bool
}

// Report is what loading noticed without failing.
type Report struct {
	// File is the config file that was read, "" when there was none.
	File string
	// Ignored lists, sorted and once each, the keys of the file (and the environment variables,
	// as "environment NAME") that have no meaning in mss-login. Their values are never kept.
	Ignored []string
	// Warnings are non-fatal notes for a human.
	Warnings []string
}

// maxFileSize bounds what Load reads, so that a wrong --config path cannot exhaust memory.
const maxFileSize = 1 << 20

// Load reads the configuration from the embedded defaults, the config file and the environment.
// On error the Config is nil; the Report is never nil.
func Load(opts LoadOptions) (*Config, *Report, error) {
	env := opts.Env
	if env == nil {
		env = os.LookupEnv
	}
	path := opts.File
	if path == "" {
		dir, err := resolveDataDir(envLookup(env))
		if err != nil {
			return nil, &Report{}, err
		}
		path = filepath.Join(dir, "config.json")
		data, err := readFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return withFile(path)(LoadBytes(nil, "", env))
		}
		if err != nil {
			return nil, &Report{}, err
		}
		return LoadBytes(data, path, env)
	}
	data, err := readFile(path)
	if errors.Is(err, fs.ErrNotExist) && !opts.RequireFile {
		cfg, rep, err := withFile(path)(LoadBytes(nil, "", env))
		rep.Warnings = append([]string{fmt.Sprintf("config file %s does not exist; using the defaults and the environment", path)}, rep.Warnings...)
		return cfg, rep, err
	}
	if err != nil {
		return nil, &Report{}, err
	}
	return LoadBytes(data, path, env)
}

// withFile records path as the file to create when loading found none there.
func withFile(path string) func(*Config, *Report, error) (*Config, *Report, error) {
	return func(c *Config, r *Report, err error) (*Config, *Report, error) {
		if c != nil {
			c.File = path
		}
		return c, r, err
	}
}

// Source says where the value of a dotted key came from: "config.defaults.json", the config
// file's name, or "environment NAME".
func (c *Config) Source(key string) string {
	if s, ok := c.sources[key]; ok {
		return s
	}
	return defaultsSource
}

// readFile reads at most maxFileSize bytes of a config file.
func readFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("config file: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config file %s: %w", path, err)
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("config file %s: larger than %d bytes; is this the right file?", path, maxFileSize)
	}
	return data, nil
}

// LoadBytes is Load with the file's content given: file nil means no config file; name labels
// the file in messages ("config.json" when empty); env nil means os.LookupEnv.
// On error the Config is nil; the Report is never nil.
func LoadBytes(file []byte, name string, env func(string) (string, bool)) (*Config, *Report, error) {
	if env == nil {
		env = os.LookupEnv
	}
	if name == "" {
		name = "config.json"
	}
	l := &loader{
		lookup:  envLookup(env),
		sources: map[string]string{},
		ignored: map[string]bool{},
		report:  &Report{},
	}
	cfg := l.load(file, name)
	for key := range l.ignored {
		l.report.Ignored = append(l.report.Ignored, key)
	}
	sort.Strings(l.report.Ignored)
	if len(l.errs) > 0 {
		return nil, l.report, errors.Join(l.errs...)
	}
	cfg.sources = l.sources
	if file != nil {
		cfg.File = name
	}
	return cfg, l.report, nil
}

// loader carries one load's state: where each key's value came from, and what went wrong.
type loader struct {
	lookup  func(string) (string, bool)
	sources map[string]string // dotted key → defaultsSource, the file's name or "environment NAME"
	ignored map[string]bool
	report  *Report
	errs    []error
}

const defaultsSource = "config.defaults.json"

func (l *loader) load(file []byte, name string) *Config {
	merged := l.layer(msslogin.DefaultConfigJSON, defaultsSource, false)
	if merged == nil {
		merged = map[string]any{}
	}
	if file != nil {
		if fileTree := l.layer(file, name, true); fileTree != nil {
			l.report.File = name
			mergeInto(merged, fileTree)
		}
	}

	cfg := &Config{}
	// The trees are type-checked against Config, so this cannot fail; a failure is a bug here.
	if b, err := json.Marshal(merged); err != nil {
		l.errs = append(l.errs, fmt.Errorf("internal error: %v", err))
	} else if err := json.Unmarshal(b, cfg); err != nil {
		l.errs = append(l.errs, fmt.Errorf("internal error: %v", err))
	}

	dir, err := resolveDataDir(l.lookup)
	if err != nil {
		l.errs = append(l.errs, err)
	}
	cfg.DataDir = dir

	l.applyEnv(cfg)
	l.validate(cfg)
	l.readSecrets(cfg)
	return cfg
}

// layer parses one JSON document and checks it against Config. It returns the cleaned tree:
// nulls, ignored keys and bad values removed, so that merging it can only set valid values.
func (l *loader) layer(data []byte, source string, user bool) map[string]any {
	if len(bytes.TrimSpace(data)) == 0 {
		if user {
			l.warn("%s is empty; using the defaults and the environment", source)
		} else {
			l.fail(source, "", "is empty")
		}
		return nil
	}
	root, err := parseJSON(data)
	if err != nil {
		l.fail(source, "", "%v", err)
		return nil
	}
	obj, ok := root.(map[string]any)
	if !ok {
		l.fail(source, "", "expected a JSON object at the top level, got %s", jsonKind(root))
		return nil
	}
	w := walker{l: l, source: source, user: user}
	return w.object("", obj, reflect.TypeFor[Config]())
}

// fail records a problem. The message must never contain a secret value.
func (l *loader) fail(source, key, format string, args ...any) {
	l.errs = append(l.errs, fmt.Errorf("%s: %s", where(source, key), fmt.Sprintf(format, args...)))
}

// failKey records a problem with the value of a key, naming where that value came from.
func (l *loader) failKey(key, format string, args ...any) {
	l.fail(l.sourceOf(key), key, format, args...)
}

func (l *loader) warn(format string, args ...any) {
	l.report.Warnings = append(l.report.Warnings, fmt.Sprintf(format, args...))
}

func (l *loader) warnKey(key, format string, args ...any) {
	l.warn("%s: %s", where(l.sourceOf(key), key), fmt.Sprintf(format, args...))
}

func (l *loader) sourceOf(key string) string {
	if s, ok := l.sources[key]; ok {
		return s
	}
	return defaultsSource
}

// where names a key and its source: "config.json: users_db.postgres_port" or
// "environment USERS_DB_POSTGRES_PORT (sets users_db.postgres_port)".
func where(source, key string) string {
	switch {
	case key == "":
		return source
	case strings.HasPrefix(source, envSourcePrefix):
		return source + " (sets " + key + ")"
	default:
		return source + ": " + key
	}
}

const envSourcePrefix = "environment "
