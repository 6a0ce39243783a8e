package config

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
)

// envBindings maps environment variables onto config keys; the environment wins over the file.
// Where several variables set one key, the first one set wins (the newer USERS_DB_* names before
// the older POSTGRES_* and MYSQL_* ones). The value is parsed by the type of the key: booleans
// accept true/false/1/0/yes/no/on/off, lists are comma-separated.
var envBindings = []struct {
	key  string
	vars []string
}{
	{"users_db.backend", []string{"USERS_DB_BACKEND"}},
	{"users_db.sqlite_path", []string{"USERS_DB_SQLITE_PATH"}},
	{"users_db.encryption_level", []string{"USERS_DB_ENCRYPTION_LEVEL"}},
	{"users_db.postgres_host", []string{"USERS_DB_POSTGRES_HOST", "POSTGRES_HOST"}},
	{"users_db.postgres_port", []string{"USERS_DB_POSTGRES_PORT", "POSTGRES_PORT"}},
	{"users_db.postgres_database", []string{"USERS_DB_POSTGRES_DATABASE", "POSTGRES_DATABASE", "POSTGRES_DB"}},
	{"users_db.postgres_user", []string{"USERS_DB_POSTGRES_USER", "POSTGRES_USER"}},
	{"users_db.mysql_host", []string{"USERS_DB_MYSQL_HOST", "MYSQL_HOST"}},
	{"users_db.mysql_port", []string{"USERS_DB_MYSQL_PORT", "MYSQL_PORT"}},
	{"users_db.mysql_database", []string{"USERS_DB_MYSQL_DATABASE", "MYSQL_DATABASE"}},
	{"users_db.mysql_user", []string{"USERS_DB_MYSQL_USER", "MYSQL_USER"}},
	{"host_base_url", []string{"HOST_BASE_URL"}},
	{"experimental_features", []string{"EXPERIMENTAL_FEATURES"}},
	{"experimental.mfa", []string{"EXPERIMENTAL_MFA"}},
	{"experimental.s3", []string{"EXPERIMENTAL_S3"}},
	{"experimental.loading_screen", []string{"EXPERIMENTAL_LOADING_SCREEN"}},
	{"experimental.news", []string{"EXPERIMENTAL_NEWS"}},
	{"experimental.login_background", []string{"EXPERIMENTAL_LOGIN_BACKGROUND"}},
	{"debug_mode", []string{"DEBUG_MODE"}},
	{"allow_guest_jwt", []string{"ALLOW_GUEST_JWT"}},
	{"mfa_disabled", []string{"MFA_DISABLED"}},
	// The original documented these two but read them from the config only; here they work.
	{"require_auth_for_remote_api", []string{"REQUIRE_AUTH_FOR_REMOTE_API"}},
	{"force_https", []string{"FORCE_HTTPS"}},
	{"recovery_mode", []string{"RECOVERY_MODE", "RECOVERY_MODE_ENABLED"}},
	{"recovery_mode_hosts", []string{"RECOVERY_MODE_HOST", "RECOVERY_MODE_HOSTS"}},
	{"loading_screen.timeout_seconds", []string{"MSS_LOGIN_LOADING_TIMEOUT_SECONDS"}},
}

// ignoredEnv are the original's variables for features mss-login does not have.
var ignoredEnv = []string{
	"API_TOKEN_JSON_PATH",
	"AUTO_INSTALL_DEPS",
	"EXPERIMENTAL_INSTALL_OTHER_NODES_DEPS",
	"EXPERIMENTAL_MODEL_ISOLATION",
	"EXPERIMENTAL_TAILSCALE_LOCAL_AUTH",
	"MSS_LOGIN_EXPERIMENTAL_FAILSAFE",
}

// minSecretKeyLength is the shortest SECRET_KEY accepted: an HMAC key needs 256 bits.
const minSecretKeyLength = 32

// envLookup treats an empty (or blank) variable as unset, as the original did: Kubernetes and
// .env files often define a variable with an empty value to mean "not set".
func envLookup(env func(string) (string, bool)) func(string) (string, bool) {
	return func(name string) (string, bool) {
		v, ok := env(name)
		if !ok || strings.TrimSpace(v) == "" {
			return "", false
		}
		return v, true
	}
}

// applyEnv sets the keys bound to environment variables.
func (l *loader) applyEnv(cfg *Config) {
	for _, b := range envBindings {
		name, raw, ok := l.firstSet(b.vars)
		if !ok {
			continue
		}
		source := envSourcePrefix + name
		if err := setFromString(fieldAt(cfg, b.key), raw); err != nil {
			l.fail(source, b.key, "%v", err)
			continue
		}
		l.sources[b.key] = source
	}
	for _, name := range ignoredEnv {
		if _, ok := l.lookup(name); ok {
			l.ignored[envSourcePrefix+name] = true
		}
	}
}

// firstSet returns the first of several variables that is set, and warns when a later one is
// also set to something else (without saying what: some of these are user names and hosts, but
// the habit of never echoing environment values is worth keeping).
func (l *loader) firstSet(names []string) (name, value string, ok bool) {
	for _, n := range names {
		v, set := l.lookup(n)
		if !set {
			continue
		}
		if !ok {
			name, value, ok = n, v, true
		} else if v != value {
			l.warn("environment %s and %s are both set and differ; %s wins", name, n, name)
		}
	}
	return name, value, ok
}

// setFromString parses an environment value into a field of the kind of its key.
func setFromString(field reflect.Value, raw string) error {
	raw = strings.TrimSpace(raw)
	switch field.Kind() {
	case reflect.String:
		field.SetString(raw)
	case reflect.Bool:
		b, err := parseBool(raw)
		if err != nil {
			return err
		}
		field.SetBool(b)
	case reflect.Int:
		n, err := strconv.ParseInt(raw, 10, strconv.IntSize)
		if err != nil {
			return fmt.Errorf("%s is not a whole number", quote(raw))
		}
		field.SetInt(n)
	case reflect.Slice:
		var list []string
		for item := range strings.SplitSeq(raw, ",") {
			if item = strings.TrimSpace(item); item != "" {
				list = append(list, item)
			}
		}
		field.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("cannot be set from the environment")
	}
	return nil
}

// parseBool accepts the spellings people use in environment variables, and nothing else: a
// typo must not silently mean false.
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "yes", "on":
		return true, nil
	case "false", "0", "no", "off":
		return false, nil
	}
	return false, fmt.Errorf("%s is not a boolean (use true/false, 1/0, yes/no or on/off)", quote(s))
}

// readSecrets reads the secret-bearing variables. Messages name variables, never values.
func (l *loader) readSecrets(cfg *Config) {
	if validEnvName(cfg.SecretKeyEnv) {
		if v, ok := l.lookup(cfg.SecretKeyEnv); !ok {
			l.warn("environment %s (named by secret_key_env) is not set; set it to a random value of at least %d characters (e.g. openssl rand -hex 32)", cfg.SecretKeyEnv, minSecretKeyLength)
		} else if utf8.RuneCountInString(v) < minSecretKeyLength {
			l.fail(envSourcePrefix+cfg.SecretKeyEnv, "", "the secret key (named by secret_key_env) must be at least %d characters long; use a random value (e.g. openssl rand -hex 32)", minSecretKeyLength)
		} else {
			cfg.SecretKey = Secret(v)
		}
	}

	names := []string{"USERS_DB_PASSWORD"}
	switch cfg.UsersDB.Backend {
	case "postgresql":
		names = append(names, "POSTGRES_PASSWORD")
	case "mysql":
		names = append(names, "MYSQL_PASSWORD")
	}
	for _, n := range names {
		if v, ok := l.lookup(n); ok {
			cfg.DatabasePassword = Secret(v)
			break
		}
	}
	if len(names) > 1 && !cfg.DatabasePassword.IsSet() {
		l.warn("users_db.backend is %s but no database password is set (%s); connecting without one", cfg.UsersDB.Backend, strings.Join(names, " or "))
	}

	cfg.S3AccessKeyID = l.secretEnv(cfg.S3Storage.AccessKeyIDEnv)
	cfg.S3SecretAccessKey = l.secretEnv(cfg.S3Storage.SecretAccessKeyEnv)
	cfg.ReleaseToken = l.secretEnv(cfg.AutoUpdate.TokenEnv)
	cfg.OIDC.ClientSecret = l.secretEnv(cfg.OIDC.ClientSecretEnv)
	for _, n := range []string{"NTFY_API_TOKEN", "NTFY_API_KEY"} {
		if v, ok := l.lookup(n); ok && v != "" {
			cfg.NtfyToken = Secret(v)
			break
		}
	}
}

// secretEnv returns the variable a *_env key names; unset, or an invalid name (which validate
// reports), gives an unset Secret.
func (l *loader) secretEnv(name string) Secret {
	if !validEnvName(name) {
		return ""
	}
	v, _ := l.lookup(name)
	return Secret(v)
}

// validEnvName reports whether s is a portable environment variable name.
func validEnvName(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'A' && r <= 'Z') || (r >= 'a' && r <= 'z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// resolveDataDir returns the absolute data directory: $MSS_LOGIN_DATA_DIR, else
// ~/.comfyui-mss-login, with a leading ~ expanded as the original did.
func resolveDataDir(lookup func(string) (string, bool)) (string, error) {
	dir, ok := lookup("MSS_LOGIN_DATA_DIR")
	if !ok {
		dir = "~/.comfyui-mss-login"
	}
	dir = strings.TrimSpace(dir)
	if dir == "~" || strings.HasPrefix(dir, "~/") {
		home, ok := lookup("HOME")
		if !ok {
			return "", errors.New("environment MSS_LOGIN_DATA_DIR: not set and HOME is unknown, so the default ~/.comfyui-mss-login cannot be found; set MSS_LOGIN_DATA_DIR")
		}
		dir = filepath.Join(home, dir[1:])
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("environment MSS_LOGIN_DATA_DIR: %v", err)
	}
	return abs, nil
}
