package notify

import (
	"net/http"
	"time"

	"github.com/mss-login/mss-login/internal/config"
)

// Sinks makes the sinks the configuration names: ntfy when ntfy.topic is set, and each webhook.
func Sinks(cfg *config.Config) []Sink {
	client := &http.Client{Timeout: 10 * time.Second,
		// A receiver's redirect is not followed: it could send the signed body elsewhere.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var out []Sink
	if cfg.Ntfy.Topic != "" {
		out = append(out, NewNtfy(cfg.Ntfy.BaseURL, cfg.Ntfy.Topic, cfg.NtfyToken.Reveal(), cfg.Ntfy.EnabledEvents, client))
	}
	for _, w := range cfg.Webhooks {
		kinds := w.Events
		if len(kinds) == 0 {
			kinds = cfg.Ntfy.EnabledEvents
		}
		out = append(out, NewWebhook(w.Name, w.URL, []byte(w.Secret.Reveal()), kinds, client))
	}
	return out
}

// OptionsFrom takes the tunables from the configuration.
func OptionsFrom(cfg *config.Config) Options {
	return Options{
		MaxAge:         time.Duration(cfg.Notifications.MaxAgeMinutes) * time.Minute,
		BurstWindow:    time.Duration(cfg.FailureWindowMinutes) * time.Minute,
		BurstThreshold: cfg.Notifications.BurstThreshold,
	}
}
