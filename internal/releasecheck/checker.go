package releasecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"

	"github.com/mss-login/mss-login/internal/config"
)

// SettingName is the app setting the auth server's GET /mss-login/api/update-status returns.
const SettingName = "update_status"

// Status is the stored result of the last check: the original's update-status fields, plus
// when it was checked and, after a failure, what went wrong (the release fields then keep the
// last successful answer).
type Status struct {
	CurrentVersion  string    `json:"current_version"`
	LatestVersion   string    `json:"latest_version"`
	UpdateAvailable bool      `json:"update_available"`
	Mode            string    `json:"mode"`
	ChangelogURL    string    `json:"changelog_url"`
	ReleaseURL      string    `json:"release_url"`
	ChangelogBody   string    `json:"changelog_body"`
	Checked         bool      `json:"checked"`
	CheckedAt       time.Time `json:"checked_at"`
	Error           string    `json:"error,omitempty"`
}

// Settings is the part of the store the checker uses.
type Settings interface {
	Setting(ctx context.Context, name string) (string, bool, error)
	SetSetting(ctx context.Context, name, value string) error
}

// Options configure a Checker. Zero durations take the production values.
type Options struct {
	Config   config.AutoUpdate
	Token    string // for private repositories; never logged
	Current  string // the binary's version
	Settings Settings
	Recorder events.EventRecorder
	// Regarding is the object the Event is about (see Setup).
	Regarding runtime.Object
	Gauge     *prometheus.GaugeVec
	Log       logr.Logger
	// Audit records an announced release in the audit trail, which notifications read (nil: not
	// recorded).
	Audit func(ctx context.Context, latest, detail string)

	Timeout    time.Duration // per request; default 10 s, as the original
	FirstDelay time.Duration // before the first check; default 30 s–2 min
	Interval   time.Duration // between checks; default check_interval_hours, + up to 10%
	Now        func() time.Time
}

// Checker is the manager runnable that checks for releases.
type Checker struct {
	o       Options
	current Version
	http    *http.Client

	last    Status // what the store holds; loaded at start so a new leader does not re-announce
	lastErr string // the last failure logged, so each distinct one is logged once
}

// New returns a Checker; it does nothing until Start.
func New(o Options) *Checker {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Checker{
		o:       o,
		current: CurrentVersion(o.Current),
		http:    newHTTPClient(o.Timeout, o.Token, o.Config.CheckURL, o.Config.ChangelogRawBaseURL),
	}
}

// NeedLeaderElection keeps the check to one replica: one Event and one log line per version.
func (c *Checker) NeedLeaderElection() bool { return true }

// Start checks shortly after start and then every interval, until ctx ends. A failed check is
// never fatal: the manager goes on and the next interval retries.
func (c *Checker) Start(ctx context.Context) error {
	c.load(ctx)
	c.o.Log.Info("release checks on", "checkMode", c.o.Config.CheckMode, "url", redact(c.o.Config.CheckURL),
		"everyHours", c.o.Config.CheckIntervalHours, "current", c.o.Current)
	t := time.NewTimer(c.firstDelay())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		c.CheckOnce(ctx)
		t.Reset(c.interval())
	}
}

func (c *Checker) firstDelay() time.Duration {
	if c.o.FirstDelay > 0 {
		return c.o.FirstDelay
	}
	// Not at once: the manager is still syncing caches, and replicas restarted together
	// should not all ask at the same second.
	return 30*time.Second + rand.N(90*time.Second)
}

func (c *Checker) interval() time.Duration {
	if c.o.Interval > 0 {
		return c.o.Interval
	}
	base := time.Duration(c.o.Config.CheckIntervalHours) * time.Hour
	return base + rand.N(base/10+1)
}

// load reads the stored status so that a restart or a new leader does not announce the same
// version again.
func (c *Checker) load(ctx context.Context) {
	raw, ok, err := c.o.Settings.Setting(ctx, SettingName)
	if err != nil {
		c.o.Log.Error(err, "reading the last release check; a known update may be announced again")
		return
	}
	if ok {
		_ = json.Unmarshal([]byte(raw), &c.last) // a bad row is overwritten by the next check
	}
}

// CheckOnce asks the feed once and reports. It is exported for tests and never panics on a
// bad answer.
func (c *Checker) CheckOnce(ctx context.Context) {
	rel, err := c.latest(ctx)
	now := c.o.Now().UTC().Truncate(time.Second)
	if err != nil {
		summary := Summary(err)
		if summary != c.lastErr {
			c.o.Log.Info("release check failed; retrying at the next interval (logged once until it changes)", "error", summary)
			c.lastErr = summary
		}
		st := c.last
		st.CurrentVersion, st.Mode, st.Checked, st.CheckedAt, st.Error = c.o.Current, "notify", true, now, summary
		c.save(ctx, st)
		return
	}
	if c.lastErr != "" {
		c.o.Log.Info("release check works again")
		c.lastErr = ""
	}

	st := Status{
		CurrentVersion:  c.o.Current,
		LatestVersion:   rel.Name,
		UpdateAvailable: Offered(c.current, rel.Version),
		Mode:            "notify",
		ReleaseURL:      rel.URL,
		Checked:         true,
		CheckedAt:       now,
	}
	if st.ReleaseURL == "" {
		st.ReleaseURL = c.o.Config.ChangelogURL
	}
	if rel.Name == c.last.LatestVersion && c.last.LatestVersion != "" {
		st.ChangelogURL, st.ChangelogBody = c.last.ChangelogURL, c.last.ChangelogBody // read once per version
	} else {
		st.ChangelogURL, st.ChangelogBody = c.changelog(ctx, rel)
	}

	announce := st.UpdateAvailable && !(c.last.UpdateAvailable && c.last.LatestVersion == st.LatestVersion)
	c.setGauge(st)
	c.save(ctx, st)
	if announce {
		c.o.Log.Info("a newer mss-login release exists; update the image or chart (mss-login never updates itself)",
			"current", st.CurrentVersion, "latest", st.LatestVersion, "release", st.ReleaseURL)
		if c.o.Recorder != nil && c.o.Regarding != nil {
			c.o.Recorder.Eventf(c.o.Regarding, nil, corev1.EventTypeNormal, "UpdateAvailable", "ReleaseCheck",
				"mss-login %s is available (running %s): %s", st.LatestVersion, st.CurrentVersion, st.ReleaseURL)
		}
		if c.o.Audit != nil {
			c.o.Audit(ctx, st.LatestVersion, fmt.Sprintf("%s, running %s: %s", st.LatestVersion, st.CurrentVersion, st.ReleaseURL))
		}
	}
}

// latest asks the configured feed for the newest release.
func (c *Checker) latest(ctx context.Context) (Release, error) {
	cfg := c.o.Config
	if cfg.CheckMode == "branch" {
		body, _, err := get(ctx, c.http, cfg.CheckURL, maxFeedBytes)
		if err != nil {
			return Release{}, err
		}
		v, name, err := ParseBranchVersion(body)
		if err != nil {
			return Release{}, err
		}
		return Release{Version: v, Name: name, Ref: cfg.Branch}, nil
	}
	if base, owner, repo, ok := GitHubAPIRelease(cfg.CheckURL); ok {
		return latestFromGitHub(ctx, c.http, base, owner, repo)
	}
	body, _, err := get(ctx, c.http, cfg.CheckURL, maxFeedBytes)
	if err != nil {
		return Release{}, err
	}
	return ParseReleaseFeed(body, c.current.IsPre())
}

// changelog reads readme/changelogs/<version>.md at the release's ref, as the original did, and
// falls back to the release notes from the feed. Both are capped at MaxChangelogBytes.
func (c *Checker) changelog(ctx context.Context, rel Release) (pageURL, body string) {
	cfg := c.o.Config
	if owner, repo, ok := Repository(cfg.CheckURL, cfg.ChangelogURL); ok && cfg.ChangelogRawBaseURL != "" && rel.Ref != "" {
		u := ChangelogURL(cfg.ChangelogRawBaseURL, owner, repo, rel.Ref, rel.Name)
		if text, truncated, err := get(ctx, c.http, u, MaxChangelogBytes); err == nil {
			return u, capText(string(text), truncated, MaxChangelogBytes)
		}
		// No changelog file for this version is normal for many releases: not worth a log line.
	}
	return cfg.ChangelogURL, capText(rel.Body, false, MaxChangelogBytes)
}

func (c *Checker) setGauge(st Status) {
	if c.o.Gauge == nil {
		return
	}
	c.o.Gauge.Reset() // one series: the previous latest is no longer the latest
	v := 0.0
	if st.UpdateAvailable {
		v = 1
	}
	c.o.Gauge.WithLabelValues(st.CurrentVersion, st.LatestVersion).Set(v)
}

func (c *Checker) save(ctx context.Context, st Status) {
	raw, err := json.Marshal(st)
	if err == nil {
		err = c.o.Settings.SetSetting(ctx, SettingName, string(raw))
	}
	if err != nil {
		c.o.Log.Error(err, "storing the release check result")
	}
	c.last = st // even unsaved: this process still announces each version once
}

// NewGauge is mss_login_update_available{current,latest}: 1 while latest is an update.
func NewGauge() *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "mss_login_update_available",
		Help: "1 when a newer mss-login release than the running one exists (labels: current and latest version), else 0.",
	}, []string{"current", "latest"})
}
