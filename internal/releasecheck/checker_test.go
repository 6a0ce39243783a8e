package releasecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"k8s.io/client-go/tools/events"

	"github.com/mss-login/mss-login/internal/config"
)

const testToken = "ghp_test-token-never-logged-9c1"

// feed emulates GitHub (API + raw files) and a GitLab-style tag list on one httptest server.
type feed struct {
	mu       sync.Mutex
	status   int               // answer of the feed endpoints; 0 = 200
	header   map[string]string // extra response headers
	body     string            // feed response body
	delay    time.Duration
	raw      map[string]string // path under /raw/ → changelog text
	requests int
	noAuth   []string // paths that arrived without the token
	srv      *httptest.Server
}

func newFeed(t *testing.T) *feed {
	f := &feed{raw: map[string]string{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *feed) set(status int, body string, header ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.status, f.body, f.header = status, body, map[string]string{}
	for i := 0; i+1 < len(header); i += 2 {
		f.header[header[i]] = header[i+1]
	}
}

func (f *feed) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests++
	if r.Header.Get("Authorization") != "Bearer "+testToken {
		f.noAuth = append(f.noAuth, r.URL.Path)
	}
	status, body, header, delay := f.status, f.body, f.header, f.delay
	text, isRaw := f.raw[strings.TrimPrefix(r.URL.Path, "/raw/")]
	f.mu.Unlock()
	if strings.HasPrefix(r.URL.Path, "/raw/") {
		if !isRaw {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, text)
		return
	}
	select {
	case <-time.After(delay):
	case <-r.Context().Done():
		return
	}
	for k, v := range header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	if status != 0 {
		w.WriteHeader(status)
	}
	fmt.Fprint(w, body)
}

// memSettings is the store's app_settings in memory; the real store is tested in store_test.go.
type memSettings struct {
	mu     sync.Mutex
	values map[string]string
	writes int
}

func (m *memSettings) Setting(_ context.Context, name string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.values[name]
	return v, ok, nil
}

func (m *memSettings) SetSetting(_ context.Context, name, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.values == nil {
		m.values = map[string]string{}
	}
	m.values[name], m.writes = value, m.writes+1
	return nil
}

func (m *memSettings) status(t *testing.T) Status {
	t.Helper()
	raw, ok, _ := m.Setting(context.Background(), SettingName)
	if !ok {
		t.Fatal("no update_status stored")
	}
	var st Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("stored status %s: %v", raw, err)
	}
	return st
}

// harness is one checker with everything it reports to captured.
type harness struct {
	*Checker
	feed     *feed
	settings Settings
	recorder *events.FakeRecorder
	gauge    *prometheus.GaugeVec
	logs     *logLines
}

type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (l *logLines) sink() logr.Logger {
	return funcr.New(func(prefix, args string) {
		l.mu.Lock()
		defer l.mu.Unlock()
		l.lines = append(l.lines, prefix+" "+args)
	}, funcr.Options{})
}

func (l *logLines) count(substr string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		if strings.Contains(line, substr) {
			n++
		}
	}
	return n
}

func (l *logLines) all() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

// newHarness builds a checker for current against f; path is the feed's path on f
// (GitHub: /repos/o/r/releases/latest, GitLab: /api/v4/projects/1/repository/tags).
func newHarness(t *testing.T, f *feed, current, mode, path string, settings Settings) *harness {
	h := &harness{feed: f, settings: settings, recorder: events.NewFakeRecorder(10), gauge: NewGauge(), logs: &logLines{}}
	h.Checker = New(Options{
		Config: config.AutoUpdate{Enabled: true, Mode: "notify", CheckMode: mode, CheckURL: f.srv.URL + path,
			CheckIntervalHours: 24, Branch: "release", ChangelogURL: "https://github.com/o/r/releases",
			ChangelogRawBaseURL: f.srv.URL + "/raw", TokenEnv: "X"},
		Token: testToken, Current: current, Settings: settings, Recorder: h.recorder,
		Regarding: NamespaceRef("mss-login-system"), Gauge: h.gauge, Log: h.logs.sink(),
		Timeout: 300 * time.Millisecond,
	})
	return h
}

func (h *harness) events() []string {
	var out []string
	for {
		select {
		case e := <-h.recorder.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

const (
	githubPath = "/repos/o/r/releases/latest"
	gitlabPath = "/api/v4/projects/1/repository/tags"
)

func TestCheckOutcomes(t *testing.T) {
	tests := []struct {
		name, path, current string
		status              int
		body                string
		header              []string
		delay               time.Duration
		want                Status // compared: LatestVersion, UpdateAvailable, ReleaseURL
		wantErr             string // substring of Status.Error
	}{
		{name: "GitHub newer", path: githubPath, current: "1.0.0",
			body: `{"tag_name": "v1.1.0", "html_url": "https://github.com/o/r/releases/tag/v1.1.0", "body": "notes"}`,
			want: Status{LatestVersion: "1.1.0", UpdateAvailable: true, ReleaseURL: "https://github.com/o/r/releases/tag/v1.1.0"}},
		{name: "GitHub same", path: githubPath, current: "v1.1.0", body: `{"tag_name": "v1.1.0", "html_url": "u"}`,
			want: Status{LatestVersion: "1.1.0", ReleaseURL: "u"}},
		{name: "GitHub older", path: githubPath, current: "1.2.0", body: `{"tag_name": "v1.1.0", "html_url": "u"}`,
			want: Status{LatestVersion: "1.1.0", ReleaseURL: "u"}},
		{name: "GitHub pre-release for a stable install", path: githubPath, current: "1.0.0", body: `{"tag_name": "v1.1.0-rc.1", "html_url": "u"}`,
			want: Status{LatestVersion: "1.1.0-rc.1", ReleaseURL: "u"}},
		{name: "GitHub pre-release for a pre-release install", path: githubPath, current: "1.1.0-rc.1", body: `{"tag_name": "v1.1.0-rc.2", "html_url": "u"}`,
			want: Status{LatestVersion: "1.1.0-rc.2", UpdateAvailable: true, ReleaseURL: "u"}},
		{name: "GitLab newer", path: gitlabPath, current: "1.0.0", body: `[{"name": "v0.9.0"}, {"name": "v1.1.0"}, {"name": "v1.0.5"}]`,
			want: Status{LatestVersion: "1.1.0", UpdateAvailable: true, ReleaseURL: "https://github.com/o/r/releases"}},
		{name: "GitLab same", path: gitlabPath, current: "1.1.0", body: `[{"name": "v1.1.0"}, {"name": "v1.0.0"}]`,
			want: Status{LatestVersion: "1.1.0", ReleaseURL: "https://github.com/o/r/releases"}},
		{name: "GitLab older", path: gitlabPath, current: "2.0.0", body: `[{"name": "v1.1.0"}]`,
			want: Status{LatestVersion: "1.1.0", ReleaseURL: "https://github.com/o/r/releases"}},
		{name: "GitLab pre-release skipped", path: gitlabPath, current: "1.0.0", body: `[{"name": "v2.0.0-rc.1"}, {"name": "v1.0.0"}]`,
			want: Status{LatestVersion: "1.0.0", ReleaseURL: "https://github.com/o/r/releases"}},
		{name: "GitHub malformed JSON", path: githubPath, current: "1.0.0", body: `{"tag_name": "v1.`, wantErr: "malformed response"},
		{name: "GitLab malformed JSON", path: gitlabPath, current: "1.0.0", body: `[{"name": `, wantErr: "malformed response"},
		{name: "GitHub 404", path: githubPath, current: "1.0.0", status: 404, body: `{"message": "Not Found"}`, wantErr: "HTTP 404 at http://127.0.0.1"},
		{name: "GitLab 404", path: gitlabPath, current: "1.0.0", status: 404, body: `{"message": "404 Project Not Found"}`, wantErr: "HTTP 404 at http://127.0.0.1"},
		{name: "GitHub 403 rate limit", path: githubPath, current: "1.0.0", status: 403,
			body:    `{"message": "API rate limit exceeded"}`,
			header:  []string{"X-RateLimit-Limit", "60", "X-RateLimit-Remaining", "0", "X-RateLimit-Reset", "1900000000"},
			wantErr: "rate limited by 127.0.0.1"},
		{name: "GitLab 429 rate limit", path: gitlabPath, current: "1.0.0", status: 429, body: `Retry later`,
			header: []string{"RateLimit-Remaining", "0", "Retry-After", "60"}, wantErr: "rate limited (HTTP 429)"},
		{name: "GitHub timeout", path: githubPath, current: "1.0.0", delay: 2 * time.Second, body: `{}`, wantErr: "no answer in time"},
		{name: "GitLab timeout", path: gitlabPath, current: "1.0.0", delay: 2 * time.Second, body: `[]`, wantErr: "no answer in time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFeed(t)
			f.set(tt.status, tt.body, tt.header...)
			f.delay = tt.delay
			settings := &memSettings{}
			h := newHarness(t, f, tt.current, "releases", tt.path, settings)
			h.CheckOnce(context.Background())
			h.CheckOnce(context.Background())

			st := settings.status(t)
			if st.CurrentVersion != tt.current || st.Mode != "notify" || !st.Checked || st.CheckedAt.IsZero() {
				t.Errorf("status header = %+v", st)
			}
			evs := h.events()
			if tt.wantErr != "" {
				t.Logf("stored error: %s", st.Error)
				if !strings.Contains(st.Error, tt.wantErr) {
					t.Errorf("error = %q, want it to contain %q", st.Error, tt.wantErr)
				}
				if n := h.logs.count("release check failed"); n != 1 {
					t.Errorf("the same failure was logged %d times over two checks, want once:\n%s", n, h.logs.all())
				}
				if st.UpdateAvailable || len(evs) != 0 || seriesCount(h.gauge) != 0 {
					t.Errorf("a failed check reported an update: %+v, events %q", st, evs)
				}
				return
			}
			if st.Error != "" || st.LatestVersion != tt.want.LatestVersion || st.UpdateAvailable != tt.want.UpdateAvailable ||
				st.ReleaseURL != tt.want.ReleaseURL {
				t.Errorf("status = %+v, want %+v", st, tt.want)
			}
			wantEvents, wantGauge := 0, 0.0
			if tt.want.UpdateAvailable {
				wantEvents, wantGauge = 1, 1
			}
			if len(evs) != wantEvents || h.logs.count("a newer mss-login release exists") != wantEvents {
				t.Errorf("two checks gave %d events %q and %d log lines, want %d each", len(evs), evs,
					h.logs.count("a newer mss-login release exists"), wantEvents)
			}
			if got := gaugeValue(h.gauge, tt.current, tt.want.LatestVersion); got != wantGauge {
				t.Errorf("gauge = %v, want %v", got, wantGauge)
			}
			if len(f.noAuth) != 0 {
				t.Errorf("requests without the token: %q", f.noAuth)
			}
			if strings.Contains(h.logs.all(), testToken) || strings.Contains(settings.values[SettingName], testToken) {
				t.Error("the token was logged or stored")
			}
		})
	}
}

// One Event, one log line and one gauge series per new version, across checks, version changes
// and a new leader (a new Checker on the same database).
func TestOncePerVersion(t *testing.T) {
	f := newFeed(t)
	settings := &memSettings{}
	h := newHarness(t, f, "1.0.0", "releases", githubPath, settings)
	ctx := context.Background()
	release := func(tag string) {
		f.set(0, fmt.Sprintf(`{"tag_name": %q, "html_url": "https://github.com/o/r/releases/tag/%s"}`, tag, tag))
	}

	release("v1.1.0")
	h.CheckOnce(ctx)
	h.CheckOnce(ctx)
	h.CheckOnce(ctx)
	if evs := h.events(); len(evs) != 1 || !strings.Contains(evs[0], "Normal UpdateAvailable mss-login 1.1.0 is available (running 1.0.0)") {
		t.Fatalf("events after three checks of 1.1.0 = %q, want one", evs)
	}
	release("v1.2.0")
	h.CheckOnce(ctx)
	if evs := h.events(); len(evs) != 1 || !strings.Contains(evs[0], "1.2.0") {
		t.Fatalf("events after 1.2.0 = %q, want one about 1.2.0", evs)
	}
	if n := h.logs.count("a newer mss-login release exists"); n != 2 {
		t.Errorf("%d log lines for two new versions over four checks:\n%s", n, h.logs.all())
	}
	if n := seriesCount(h.gauge); n != 1 {
		t.Errorf("gauge has %d series, want only the latest", n)
	}
	if got := gaugeValue(h.gauge, "1.0.0", "1.2.0"); got != 1 {
		t.Errorf("gauge{1.0.0,1.2.0} = %v", got)
	}

	// A new leader reads what the old one stored and stays quiet about 1.2.0.
	h2 := newHarness(t, f, "1.0.0", "releases", githubPath, settings)
	h2.load(ctx)
	h2.CheckOnce(ctx)
	if evs := h2.events(); len(evs) != 0 || h2.logs.count("a newer") != 0 {
		t.Errorf("a new leader announced a known version again: %q", evs)
	}
	// …but the gauge, which lives in its process, is set.
	if got := gaugeValue(h2.gauge, "1.0.0", "1.2.0"); got != 1 {
		t.Errorf("new leader's gauge = %v", got)
	}

	// A failure keeps the last answer and adds the error; recovery clears it.
	f.set(500, `oops`)
	h.CheckOnce(ctx)
	st := settings.status(t)
	if st.LatestVersion != "1.2.0" || !st.UpdateAvailable || !strings.Contains(st.Error, "HTTP 500") {
		t.Errorf("status after a failure = %+v", st)
	}
	release("v1.2.0")
	h.CheckOnce(ctx)
	if st := settings.status(t); st.Error != "" || h.logs.count("release check works again") != 1 || len(h.events()) != 0 {
		t.Errorf("after recovery: %+v, logs:\n%s", st, h.logs.all())
	}
}

func TestChangelog(t *testing.T) {
	f := newFeed(t)
	f.raw["o/r/v1.1.0/readme/changelogs/1.1.0.md"] = "# 1.1.0\n- fixed things\n"
	f.raw["o/r/v1.3.0/readme/changelogs/1.3.0.md"] = strings.Repeat("x", MaxChangelogBytes+500)
	f.raw["o/r/release/readme/changelogs/1.4.0.md"] = "branch notes"
	settings := &memSettings{}
	h := newHarness(t, f, "1.0.0", "releases", githubPath, settings)
	ctx := context.Background()

	f.set(0, `{"tag_name": "v1.1.0", "body": "release body"}`)
	h.CheckOnce(ctx)
	st := settings.status(t)
	if st.ChangelogURL != f.srv.URL+"/raw/o/r/v1.1.0/readme/changelogs/1.1.0.md" || st.ChangelogBody != "# 1.1.0\n- fixed things\n" {
		t.Errorf("changelog from the file: %q %q", st.ChangelogURL, st.ChangelogBody)
	}

	f.set(0, `{"tag_name": "v1.2.0", "body": "release body 1.2"}`) // no file: the release body
	h.CheckOnce(ctx)
	st = settings.status(t)
	if st.ChangelogURL != "https://github.com/o/r/releases" || st.ChangelogBody != "release body 1.2" {
		t.Errorf("changelog from the body: %q %q", st.ChangelogURL, st.ChangelogBody)
	}

	f.set(0, `{"tag_name": "v1.3.0"}`) // too big: capped
	h.CheckOnce(ctx)
	st = settings.status(t)
	if len(st.ChangelogBody) > MaxChangelogBytes+50 || !strings.HasSuffix(st.ChangelogBody, "(truncated)") {
		t.Errorf("changelog of %d bytes, not capped", len(st.ChangelogBody))
	}

	// Branch mode reads the version from check_url and the changelog at the branch.
	hb := newHarness(t, f, "1.0.0", "branch", "/raw/o/r/release/pyproject.toml", &memSettings{})
	f.raw["o/r/release/pyproject.toml"] = "[project]\nversion = \"1.4.0\"\n"
	hb.CheckOnce(ctx)
	st = hb.settings.(*memSettings).status(t)
	if st.LatestVersion != "1.4.0" || !st.UpdateAvailable || st.ChangelogBody != "branch notes" ||
		st.ChangelogURL != f.srv.URL+"/raw/o/r/release/readme/changelogs/1.4.0.md" {
		t.Errorf("branch mode: %+v", st)
	}
}

func TestBranchMode(t *testing.T) {
	for _, tt := range []struct {
		body, wantErr, latest string
		avail                 bool
	}{
		{body: `{"version": "1.1.0"}`, latest: "1.1.0", avail: true},
		{body: "version = \"1.0.0\"\n", latest: "1.0.0"},
		{body: `{"version": "0.9.0"}`, latest: "0.9.0"},
		{body: `{"version": `, wantErr: "malformed response"},
		{body: `<html>maintenance</html>`, wantErr: "malformed response"},
	} {
		f := newFeed(t)
		f.set(0, tt.body)
		settings := &memSettings{}
		h := newHarness(t, f, "1.0.0", "branch", "/version.json", settings)
		h.CheckOnce(context.Background())
		st := settings.status(t)
		if st.LatestVersion != tt.latest || st.UpdateAvailable != tt.avail || !strings.Contains(st.Error, tt.wantErr) ||
			(tt.wantErr == "") != (st.Error == "") {
			t.Errorf("%s: %+v", tt.body, st)
		}
	}
}

// Start checks after the first delay and then every interval, and returns when the context ends.
func TestStartLoop(t *testing.T) {
	f := newFeed(t)
	f.set(0, `{"tag_name": "v9.0.0"}`)
	settings := &memSettings{}
	h := newHarness(t, f, "1.0.0", "releases", githubPath, settings)
	h.o.FirstDelay, h.o.Interval = 10*time.Millisecond, 30*time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Start(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		n := f.requests
		f.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d checks in 5 s", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Start returned %v", err)
	}
	if !h.NeedLeaderElection() {
		t.Error("the check must run on the leader only")
	}
	if evs := h.events(); len(evs) != 1 {
		t.Errorf("events = %q, want one", evs)
	}
}

// seriesCount is the number of label sets the gauge exports.
func seriesCount(g *prometheus.GaugeVec) int {
	ch := make(chan prometheus.Metric, 16)
	g.Collect(ch)
	close(ch)
	return len(ch)
}

// gaugeValue is the exported value of one series, -1 when it is not exported.
func gaugeValue(g *prometheus.GaugeVec, current, latest string) float64 {
	ch := make(chan prometheus.Metric, 16)
	g.Collect(ch)
	close(ch)
	for m := range ch {
		var out dto.Metric
		_ = m.Write(&out)
		labels := map[string]string{}
		for _, l := range out.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		if labels["current"] == current && labels["latest"] == latest {
			return out.GetGauge().GetValue()
		}
	}
	return -1
}
