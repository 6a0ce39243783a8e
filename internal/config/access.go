package config

import (
	"encoding/json"
	"net/netip"
	"net/url"
	"slices"

	"github.com/mss-login/mss-login/internal/netaddr"
)

// SQLitePath is the absolute path of the SQLite database: users_db.sqlite_path, resolved under
// DataDir when relative.
func (c *Config) SQLitePath() string {
	p, err := resolveUnder(c.DataDir, c.UsersDB.SQLitePath)
	if err != nil {
		return "" // Load rejects such a path; only a hand-built Config gets here
	}
	return p
}

// DataPath resolves a path from the configuration the way the original did: absolute paths are
// kept, relative ones are joined to DataDir and must not leave it.
func (c *Config) DataPath(p string) (string, error) {
	return resolveUnder(c.DataDir, p)
}

// ParsedTrustedProxies returns trusted_proxies as prefixes; single IPs become /32 or /128.
func (c *Config) ParsedTrustedProxies() []netip.Prefix { return parsePrefixes(c.TrustedProxies) }

// ParsedLocalNetworkCIDRs returns local_network_cidrs as prefixes (empty: use the built-in list).
func (c *Config) ParsedLocalNetworkCIDRs() []netip.Prefix { return parsePrefixes(c.LocalNetworkCIDRs) }

// ParsedRecoveryModeHosts returns recovery_mode_hosts as prefixes.
func (c *Config) ParsedRecoveryModeHosts() []netip.Prefix { return parsePrefixes(c.RecoveryModeHosts) }

// parsePrefixes skips entries that do not parse: Load has rejected them already.
func parsePrefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := netaddr.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// MFAEnabled reports whether TOTP MFA is on: the experimental master switch, experimental.mfa,
// and not mfa_disabled (original §8.1).
func (c *Config) MFAEnabled() bool {
	return c.ExperimentalFeatures && c.Experimental.MFA && !c.MFADisabled
}

// S3Enabled reports whether S3 storage is on: the experimental master switch, experimental.s3
// and s3_storage.enabled (original §9).
func (c *Config) S3Enabled() bool {
	return c.ExperimentalFeatures && c.Experimental.S3 && c.S3Storage.Enabled
}

// Redacted returns the effective configuration as indented JSON, for `mss-login config
// validate`: every key, URLs with any password masked, the data directory, and an
// "environment" object saying which secret-bearing inputs are "set" or "unset", never their values.
func (c *Config) Redacted() ([]byte, error) {
	view := *c
	for _, u := range []*string{&view.UpstreamURL, &view.HostBaseURL, &view.AutoUpdate.CheckURL,
		&view.AutoUpdate.ChangelogURL, &view.AutoUpdate.ChangelogRawBaseURL, &view.S3Storage.EndpointURL, &view.LoginBackground.URL} {
		*u = redactURL(*u)
	}
	// A webhook URL's path is often its credential (Slack's, Teams').
	view.Webhooks = slices.Clone(c.Webhooks)
	for i := range view.Webhooks {
		if u, err := url.Parse(view.Webhooks[i].URL); err == nil && u.Host != "" {
			view.Webhooks[i].URL = u.Scheme + "://" + u.Host + "/[redacted]"
		}
	}
	setOrUnset := func(s Secret) string {
		if s.IsSet() {
			return "set"
		}
		return "unset"
	}
	return json.MarshalIndent(struct {
		*Config
		DataDir     string            `json:"data_dir"`
		Environment map[string]string `json:"environment"`
	}{
		Config:  &view,
		DataDir: c.DataDir,
		Environment: map[string]string{
			c.SecretKeyEnv:                 setOrUnset(c.SecretKey),
			"database_password":            setOrUnset(c.DatabasePassword),
			c.S3Storage.AccessKeyIDEnv:     setOrUnset(c.S3AccessKeyID),
			c.S3Storage.SecretAccessKeyEnv: setOrUnset(c.S3SecretAccessKey),
			c.AutoUpdate.TokenEnv:          setOrUnset(c.ReleaseToken),
			"NTFY_API_TOKEN":               setOrUnset(c.NtfyToken),
			c.OIDC.ClientSecretEnv:         setOrUnset(c.OIDC.ClientSecret),
		},
	}, "", "  ")
}

// redactURL masks the password of a URL with user info.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.User == nil {
		return s
	}
	return u.Redacted()
}
