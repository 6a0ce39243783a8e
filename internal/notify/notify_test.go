package notify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/mss-login/mss-login/internal/notify"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

const typedPassword = "Hunter2-typed-in-the-name-field"

// receiver is a real HTTP server on loopback that checks what it gets: ntfy's JSON publishing
// format and the webhook's schema and signature. fail makes the first n requests answer 503.
type receiver struct {
	t      *testing.T
	secret []byte
	token  string
	srv    *httptest.Server

	mu        sync.Mutex
	fail      int
	attempts  int
	delivered map[string]int // event id → successful deliveries
	kinds     map[string]int // kind → successful deliveries
	bodies    []string
}

func newReceiver(t *testing.T, fail int) *receiver {
	r := &receiver{t: t, secret: []byte("hook-key-Zq9"), token: "tk_ntfy-Uo4", fail: fail, delivered: map[string]int{}, kinds: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.fail > 0 {
		r.fail--
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var id, kind string
	switch req.URL.Path {
	case "/ntfy":
		var m struct {
			Topic, Title, Message string
			Priority              int
			Tags                  []string
		}
		if err := json.Unmarshal(body, &m); err != nil || m.Topic != "alerts" || m.Title == "" || m.Message == "" || m.Priority < 1 || m.Priority > 5 {
			r.t.Errorf("not an ntfy JSON message: %s (%v)", body, err)
		}
		if got := req.Header.Get("Authorization"); got != "Bearer "+r.token {
			r.t.Errorf("ntfy Authorization %q", got)
		}
		id, kind = m.Title+"|"+m.Message, m.Title
	case "/hook":
		ts := req.Header.Get("X-MSS-Login-Timestamp")
		n, _ := strconv.ParseInt(ts, 10, 64)
		if want := notify.Signature(r.secret, n, body); req.Header.Get("X-MSS-Login-Signature") != want || time.Since(time.Unix(n, 0)) > time.Minute {
			r.t.Errorf("bad signature %q (timestamp %s)", req.Header.Get("X-MSS-Login-Signature"), ts)
		}
		var b notify.WebhookBody
		if err := json.Unmarshal(body, &b); err != nil || b.Version != 1 || b.Source != "mss-login" || b.ID == "" || b.Kind == "" || b.At.IsZero() {
			r.t.Errorf("not a webhook body: %s (%v)", body, err)
		}
		if req.Header.Get("X-MSS-Login-Event") != b.Kind || req.Header.Get("X-MSS-Login-Delivery") != b.ID {
			r.t.Errorf("headers do not match the body: %v", req.Header)
		}
		id, kind = b.ID, b.Kind
	default:
		http.NotFound(w, req)
		return
	}
	r.delivered[id]++
	r.kinds[kind]++
	r.bodies = append(r.bodies, string(body))
}

func (r *receiver) snapshot() (delivered, kinds map[string]int, attempts int, bodies string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, k := map[string]int{}, map[string]int{}
	for a, b := range r.delivered {
		d[a] = b
	}
	for a, b := range r.kinds {
		k[a] = b
	}
	return d, k, r.attempts, strings.Join(r.bodies, "\n")
}

func fast() notify.Options {
	return notify.Options{Poll: 20 * time.Millisecond, Settle: time.Millisecond, MinBackoff: 20 * time.Millisecond,
		MaxBackoff: 100 * time.Millisecond, BurstWindow: time.Hour, BurstThreshold: 3}
}

// Each event once, through ntfy and a signed webhook, with two notifiers (two replicas) on one
// database and a receiver that fails at first: retried with backoff, one log line on the first
// failure and one on recovery, nothing sent twice, the history before the sinks existed not sent.
func TestEachEventOnce(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		rcv := newReceiver(t, 3)
		audit := func(e store.AuditEvent) {
			t.Helper()
			if err := s.Audit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		audit(store.AuditEvent{Action: "user.created", Actor: "admin", Target: "history"})
		var logs bytes.Buffer
		var logMu sync.Mutex
		log := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &logMu}, nil))
		sinks := func() []notify.Sink {
			return []notify.Sink{
				notify.NewNtfy(rcv.srv.URL+"/ntfy", "alerts", rcv.token, nil, rcv.srv.Client()),
				notify.NewWebhook("ops", rcv.srv.URL+"/hook", rcv.secret, nil, rcv.srv.Client()),
			}
		}
		reg := prometheus.NewRegistry()
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		for range 2 {
			n := notify.New(s, sinks(), log, reg, fast())
			go n.Run(ctx)
		}
		time.Sleep(100 * time.Millisecond) // the cursors exist: what follows is sent
		for i := range 10 {
			audit(store.AuditEvent{Action: "token.created", Actor: "bob", Target: fmt.Sprintf("tok-%d", i)})
		}
		audit(store.AuditEvent{Action: "password.changed", Actor: "bob"}) // not notified
		audit(store.AuditEvent{Action: "ban.created", Actor: "system", Target: "192.0.2.7", ClientIP: "192.0.2.7", Detail: "10 failed attempts"})

		deadline := time.Now().Add(20 * time.Second)
		for {
			d, _, _, _ := rcv.snapshot()
			if len(d) >= 22 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(300 * time.Millisecond) // a duplicate would arrive now
		d, k, attempts, bodies := rcv.snapshot()
		if len(d) != 22 {
			t.Fatalf("%d distinct deliveries, want 22 (11 events × 2 sinks): %v", len(d), d)
		}
		for id, c := range d {
			if c != 1 {
				t.Errorf("%s delivered %d times", id, c)
			}
		}
		if k["token_created"] != 10 || k["ip_banned"] != 1 || strings.Contains(bodies, "history") {
			t.Errorf("kinds %v; history sent: %v", k, strings.Contains(bodies, "history"))
		}
		if attempts != 25 {
			t.Errorf("%d attempts, want 25 (3 refused, 22 delivered)", attempts)
		}
		logMu.Lock()
		text := logs.String()
		logMu.Unlock()
		if f, r := strings.Count(text, "notification delivery failing"), strings.Count(text, "notifications delivered again"); f < 1 || f > 2 || r != f {
			t.Errorf("%d failure lines and %d recovery lines (one each per failing sink):\n%s", f, r, text)
		}
		if strings.Contains(text, rcv.token) || strings.Contains(text, "/hook") {
			t.Errorf("the log shows the token or the webhook's path:\n%s", text)
		}
		if got := testutil.ToFloat64(mustVec(t, reg, "mss_login_notifications_sent_total")); got != 22 {
			t.Errorf("sent counter %v", got)
		}
		if got := testutil.ToFloat64(mustVec(t, reg, "mss_login_notifications_failed_total")); got != 3 {
			t.Errorf("failed counter %v", got)
		}
	})
}

// A storm of 1,000 failed logins from one address is one notification (and a second address's
// burst is its own); fewer than the threshold is none.
func TestBurstUnderStorm(t *testing.T) {
	ctx := context.Background()
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		rcv := newReceiver(t, 0)
		ctx, stop := context.WithCancel(ctx)
		defer stop()
		n := notify.New(s, []notify.Sink{notify.NewWebhook("ops", rcv.srv.URL+"/hook", rcv.secret, nil, rcv.srv.Client())}, slog.New(slog.DiscardHandler), nil, fast())
		go n.Run(ctx)
		time.Sleep(100 * time.Millisecond)
		var wg sync.WaitGroup
		for w := range 4 { // four writers, as replicas would be
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 250 {
					ip := "198.51.100.1"
					if w == 0 && i < 5 {
						ip = "198.51.100.2"
					}
					if w == 0 && i < 2 {
						ip = "198.51.100.3" // two failures: under the threshold
					}
					if err := s.Audit(ctx, store.AuditEvent{Action: "login.failure", Actor: typedPassword, ClientIP: ip}); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		deadline := time.Now().Add(30 * time.Second)
		for {
			_, k, _, _ := rcv.snapshot()
			if k["login_failed_burst"] >= 2 || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		time.Sleep(500 * time.Millisecond)
		_, k, _, bodies := rcv.snapshot()
		if k["login_failed_burst"] != 2 || !strings.Contains(bodies, "198.51.100.1") || !strings.Contains(bodies, "198.51.100.2") || strings.Contains(bodies, "198.51.100.3") {
			t.Errorf("burst notifications %v:\n%s", k, bodies)
		}
		if strings.Contains(bodies, typedPassword) {
			t.Error("what was typed into a failed login was sent")
		}
	})
}

// An event undelivered for longer than MaxAge is dropped and counted, and the sink goes on.
func TestDroppedAfterMaxAge(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	s := testenv.Open(t, store.SQLite)
	rcv := newReceiver(t, 1<<30)
	reg := prometheus.NewRegistry()
	o := fast()
	o.MaxAge = 300 * time.Millisecond
	n := notify.New(s, []notify.Sink{notify.NewWebhook("ops", rcv.srv.URL+"/hook", rcv.secret, nil, rcv.srv.Client())}, slog.New(slog.DiscardHandler), reg, o)
	go n.Run(ctx)
	time.Sleep(100 * time.Millisecond)
	for i := range 3 {
		if err := s.Audit(ctx, store.AuditEvent{Action: "user.deleted", Actor: "admin", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for testutil.ToFloat64(mustVec(t, reg, "mss_login_notifications_dropped_total")) < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if got := testutil.ToFloat64(mustVec(t, reg, "mss_login_notifications_dropped_total")); got != 3 {
		t.Errorf("dropped %v, want 3", got)
	}
}

func mustVec(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "sum"})
	c.Add(sum)
	return c
}

type lockedWriter struct {
	w  io.Writer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// A batch that takes longer than the lease: the holder renews it before each delivery, so the
// other notifier never takes over and sends again.
func TestSlowReceiverNotSentTwice(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	s := testenv.Open(t, store.SQLite)
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(150 * time.Millisecond) // six of them outlast the lease below
		var b notify.WebhookBody
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		seen[b.ID]++
		mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	o := fast()
	o.Lease, o.SendTimeout = 400*time.Millisecond, 200*time.Millisecond
	for range 2 {
		go notify.New(s, []notify.Sink{notify.NewWebhook("ops", srv.URL, nil, nil, srv.Client())}, slog.New(slog.DiscardHandler), nil, o).Run(ctx)
	}
	time.Sleep(100 * time.Millisecond)
	for i := range 6 {
		if err := s.Audit(ctx, store.AuditEvent{Action: "user.deleted", Actor: "admin", Target: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n >= 6 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(400 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 6 {
		t.Errorf("%d of 6 delivered", len(seen))
	}
	for id, c := range seen {
		if c != 1 {
			t.Errorf("%s delivered %d times", id, c)
		}
	}
}
