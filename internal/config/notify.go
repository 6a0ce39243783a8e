package config

import (
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/mss-login/mss-login/internal/notify/events"
)

// Ntfy is ntfy: notifications to an ntfy server, off while topic is empty. The access token is
// read from the environment only (Config.NtfyToken).
type Ntfy struct {
	Topic   string `json:"topic"`
	BaseURL string `json:"base_url"`
	// EnabledEvents lists the kinds sent (docs/authserver.md#notifications); empty: all but
	// user_login and user_logout.
	EnabledEvents []string `json:"enabled_events"`
}

// Webhook is one entry of webhooks: a signed JSON POST per event.
type Webhook struct {
	Name string `json:"name"` // names its cursor and metrics
	URL  string `json:"url"`
	// SecretEnv names the variable with the HMAC key of X-MSS-Login-Signature; "" sends unsigned.
	SecretEnv string   `json:"secret_env"`
	Events    []string `json:"events"` // empty: as ntfy.enabled_events
	// Secret is the value of SecretEnv.
	Secret Secret `json:"-"`
}

// Notifications tunes both ntfy and the webhooks.
type Notifications struct {
	// BurstThreshold failed logins of one address within failure_window_minutes make one
	// login_failed_burst notification; the rest of the window's failures make none.
	BurstThreshold int `json:"burst_threshold"`
	// MaxAgeMinutes: an event still undelivered after this long is dropped (and counted).
	MaxAgeMinutes int `json:"max_age_minutes"`
}

var (
	ntfyTopic   = regexp.MustCompile(`^[-_A-Za-z0-9]{1,64}$`)
	webhookName = regexp.MustCompile(`^[a-z0-9][-a-z0-9]{0,39}$`)
)

func (l *loader) validateNotifications(c *Config) {
	if c.Ntfy.Topic != "" && !ntfyTopic.MatchString(c.Ntfy.Topic) {
		l.failKey("ntfy.topic", "must be 1 to 64 letters, digits, - or _, got %s", quote(c.Ntfy.Topic))
	}
	if c.Ntfy.Topic != "" {
		l.secureURL("ntfy.base_url", c.Ntfy.BaseURL)
	}
	l.eventKinds("ntfy.enabled_events", c.Ntfy.EnabledEvents)
	seen := map[string]bool{}
	for i := range c.Webhooks {
		w := &c.Webhooks[i]
		key := fmt.Sprintf("webhooks[%d]", i)
		if !webhookName.MatchString(w.Name) {
			l.failKey(key+".name", "must be 1 to 40 lower-case letters, digits or -, starting with a letter or digit, got %s", quote(w.Name))
		} else if seen[w.Name] {
			l.failKey(key+".name", "%s is the name of an earlier webhook", quote(w.Name))
		}
		seen[w.Name] = true
		if w.URL == "" {
			l.failKey(key+".url", "must not be empty")
		} else {
			l.secureURL(key+".url", w.URL)
		}
		if w.SecretEnv != "" {
			l.envName(key+".secret_env", w.SecretEnv)
			if w.Secret = l.secretEnv(w.SecretEnv); !w.Secret.IsSet() && validEnvName(w.SecretEnv) {
				l.warnKey(key+".secret_env", "%s is not set; this webhook's requests are not signed", w.SecretEnv)
			}
		}
		l.eventKinds(key+".events", w.Events)
	}
	l.intRange("notifications.burst_threshold", c.Notifications.BurstThreshold, 1, 1000)
	l.intRange("notifications.max_age_minutes", c.Notifications.MaxAgeMinutes, 1, 7*24*60)
}

// eventKinds checks a list of notification kinds.
func (l *loader) eventKinds(key string, kinds []string) {
	known := events.Kinds()
	for i, k := range kinds {
		if !slices.Contains(known, k) {
			l.failKey(fmt.Sprintf("%s[%d]", key, i), "unknown event %s; one of %s", quote(k), strings.Join(known, ", "))
		}
	}
}

// secureURL checks an http(s) URL that carries credentials or personal data: https, or http
// to a loopback address only.
func (l *loader) secureURL(key, s string) {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		l.failKey(key, "must be an absolute https:// URL")
		return
	}
	if u.Scheme == "http" && !loopbackHost(u.Hostname()) {
		l.failKey(key, "must be https:// (http:// only to a loopback address), got %s", quote(u.Scheme+"://"+u.Host))
	}
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
