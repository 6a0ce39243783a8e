package releasecheck

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/mss-login/mss-login/internal/config"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The update_status row, on each real database: written with the original's fields, read back
// by a new leader so a known version is not announced twice, and moved on by a new version.
func TestStatusRowOnEveryBackend(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		ctx := context.Background()
		f := newFeed(t)
		f.set(0, `{"tag_name": "v1.1.0", "html_url": "https://github.com/o/r/releases/tag/v1.1.0", "body": "notes"}`)
		h := newHarness(t, f, "1.0.0", "releases", githubPath, s)
		h.load(ctx)
		h.CheckOnce(ctx)
		h.CheckOnce(ctx)

		raw, ok, err := s.Setting(ctx, SettingName)
		if err != nil || !ok {
			t.Fatalf("update_status: %v %v", ok, err)
		}
		var fields map[string]any
		if err := json.Unmarshal([]byte(raw), &fields); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"current_version", "latest_version", "update_available", "mode", "changelog_url",
			"release_url", "changelog_body", "checked", "checked_at"} {
			if _, ok := fields[k]; !ok {
				t.Errorf("stored status has no %q: %s", k, raw)
			}
		}
		if fields["latest_version"] != "1.1.0" || fields["update_available"] != true || fields["changelog_body"] != "notes" {
			t.Errorf("stored status = %s", raw)
		}

		h2 := newHarness(t, f, "1.0.0", "releases", githubPath, s) // a new leader on the same database
		h2.load(ctx)
		h2.CheckOnce(ctx)
		f.set(0, `{"tag_name": "v1.2.0"}`)
		h2.CheckOnce(ctx)
		evs := append(h.events(), h2.events()...)
		if len(evs) != 2 || !strings.Contains(evs[0], "1.1.0") || !strings.Contains(evs[1], "1.2.0") {
			t.Errorf("events = %q, want one for 1.1.0 and one for 1.2.0", evs)
		}
		if st := statusOf(t, s); st.LatestVersion != "1.2.0" || st.ChangelogBody != "" {
			t.Errorf("after 1.2.0: %+v", st)
		}
	})
}

func statusOf(t *testing.T, s Settings) Status {
	t.Helper()
	raw, _, err := s.Setting(context.Background(), SettingName)
	if err != nil {
		t.Fatal(err)
	}
	var st Status
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	return st
}

// Setup in a real manager against a real API server: the Event lands in the manager's
// namespace, the gauge is in controller-runtime's registry, and the row is in the database.
func TestSetupInManager(t *testing.T) {
	_, restCfg := testenv.ControlPlane(t)
	s := testenv.Open(t, store.SQLite)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c, err := client.New(restCfg, client.Options{Scheme: scheme})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const ns = "mss-login-system"
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}

	f := newFeed(t)
	f.set(0, `{"tag_name": "v3.0.0", "html_url": "https://github.com/o/r/releases/tag/v3.0.0"}`)
	cfg := &config.Config{AutoUpdate: config.AutoUpdate{Enabled: true, Mode: "notify", CheckMode: "releases",
		CheckURL: f.srv.URL + githubPath, CheckIntervalHours: 24, ChangelogURL: "https://github.com/o/r/releases",
		ChangelogRawBaseURL: f.srv.URL + "/raw", TokenEnv: "X"}}

	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{Scheme: scheme, Metrics: metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := Setup(mgr, s, cfg, ns, func(o *Options) { o.FirstDelay, o.Current = 10*time.Millisecond, "2.0.0" }); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()

	var got []eventsv1.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		var list eventsv1.EventList
		if err := c.List(ctx, &list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		got = list.Items
		if len(got) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(got) != 1 {
		t.Fatalf("%d events in %s, want 1: %+v", len(got), ns, got)
	}
	e := got[0]
	if e.Reason != "UpdateAvailable" || e.Type != corev1.EventTypeNormal || e.Regarding.Kind != "Namespace" ||
		e.Regarding.Name != ns || !strings.Contains(e.Note, "mss-login 3.0.0 is available (running 2.0.0)") {
		t.Errorf("event = reason %q type %q regarding %+v note %q", e.Reason, e.Type, e.Regarding, e.Note)
	}
	if st := statusOf(t, s); st.LatestVersion != "3.0.0" || !st.UpdateAvailable {
		t.Errorf("stored status = %+v", st)
	}
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := ""
	for _, mf := range families {
		if mf.GetName() == "mss_login_update_available" {
			for _, m := range mf.GetMetric() {
				found += fmt.Sprint(m.GetLabel(), m.GetGauge().GetValue())
			}
		}
	}
	if !strings.Contains(found, `value:"3.0.0"`) || !strings.HasSuffix(found, " 1") {
		t.Errorf("mss_login_update_available in the metrics registry: %q", found)
	}
}

// enabled: false adds nothing to the manager.
func TestSetupDisabled(t *testing.T) {
	cfg := &config.Config{AutoUpdate: config.AutoUpdate{Enabled: false, CheckURL: "https://example.com"}}
	if err := Setup(nil, nil, cfg, "ns"); err != nil { // a nil manager would panic if it were used
		t.Fatal(err)
	}
	cfg.AutoUpdate.Enabled, cfg.AutoUpdate.CheckURL = true, ""
	if err := Setup(nil, nil, cfg, "ns"); err != nil {
		t.Fatal(err)
	}
}
