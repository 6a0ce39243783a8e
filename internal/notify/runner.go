package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mss-login/mss-login/internal/notify/events"
	"github.com/mss-login/mss-login/internal/store"
)

// Event is one notification (events.Event).
type Event = events.Event

// Store is what the notifier needs of the users database (*store.Store).
type Store interface {
	// AuditAfter lists audit entries with an id above after, oldest first.
	AuditAfter(ctx context.Context, after int64, limit int) ([]store.AuditEvent, error)
	// CountAudit counts the entries of an action from an address at or after since, with an
	// id up to upTo.
	CountAudit(ctx context.Context, action, clientIP string, since time.Time, upTo int64) (int, error)
	// HoldNotifyCursor takes or renews the lease on a sink's cursor until `until`; a sink seen
	// for the first time starts at the newest entry (history is not sent).
	HoldNotifyCursor(ctx context.Context, sink, holder string, now, until time.Time) (cursor int64, held bool, err error)
	// AdvanceNotifyCursor moves the cursor while holder still holds it.
	AdvanceNotifyCursor(ctx context.Context, sink, holder string, cursor int64) error
}

// Options tune a Notifier; zero values take the defaults.
type Options struct {
	Poll           time.Duration // how often the trail is read (1 s)
	Lease          time.Duration // how long a cursor is held without renewal (30 s, at least 2 × SendTimeout)
	SendTimeout    time.Duration // one delivery's limit (10 s)
	MaxAge         time.Duration // an event undelivered for longer is dropped (1 h)
	MinBackoff     time.Duration // first retry (1 s), doubling …
	MaxBackoff     time.Duration // … up to (5 min)
	BurstWindow    time.Duration // failed-login burst window (failure_window_minutes)
	BurstThreshold int           // failures in a window that make a burst (3)
	// Settle is how old an entry must be before it is read: an insert that took a lower id may
	// commit a moment after a higher one, and the cursor must not pass it (2 s).
	Settle time.Duration
	Now    func() time.Time
}

func (o *Options) defaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.Poll, time.Second)
	def(&o.SendTimeout, 10*time.Second)
	def(&o.Lease, 30*time.Second)
	// Renewed before each delivery, the lease must outlast the longest one by far.
	o.Lease = max(o.Lease, 2*o.SendTimeout)
	def(&o.MaxAge, time.Hour)
	def(&o.MinBackoff, time.Second)
	def(&o.MaxBackoff, 5*time.Minute)
	def(&o.BurstWindow, 15*time.Minute)
	def(&o.Settle, 2*time.Second)
	if o.BurstThreshold <= 0 {
		o.BurstThreshold = 3
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// Notifier runs the sinks. Every process may run one; the leases make each event go out once.
type Notifier struct {
	db     Store
	sinks  []Sink
	log    *slog.Logger
	opts   Options
	holder string
	m      *metrics
}

type metrics struct {
	sent, failed, dropped *prometheus.CounterVec
}

// New makes a Notifier; reg (may be nil) gets its counters.
func New(db Store, sinks []Sink, log *slog.Logger, reg prometheus.Registerer, opts Options) *Notifier {
	opts.defaults()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	m := &metrics{
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mss_login_notifications_sent_total",
			Help: "Notifications delivered, by sink."}, []string{"sink"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mss_login_notifications_failed_total",
			Help: "Delivery attempts that failed (each is retried), by sink."}, []string{"sink"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "mss_login_notifications_dropped_total",
			Help: "Notifications given up after notify max age undelivered, by sink."}, []string{"sink"}),
	}
	if reg != nil {
		for _, c := range []**prometheus.CounterVec{&m.sent, &m.failed, &m.dropped} {
			if err := reg.Register(*c); err != nil {
				// A second notifier in one process (mss-login dev) counts into the first's.
				if are, ok := err.(prometheus.AlreadyRegisteredError); ok {
					if existing, ok := are.ExistingCollector.(*prometheus.CounterVec); ok {
						*c = existing
					}
				}
			}
		}
	}
	for _, s := range sinks {
		for _, c := range []*prometheus.CounterVec{m.sent, m.failed, m.dropped} {
			c.WithLabelValues(s.Name())
		}
	}
	return &Notifier{db: db, sinks: sinks, log: log, opts: opts, holder: hex.EncodeToString(b), m: m}
}

// Run delivers until ctx ends, one goroutine per sink: a failing sink holds back only itself.
func (n *Notifier) Run(ctx context.Context) {
	done := make(chan struct{}, len(n.sinks))
	for _, s := range n.sinks {
		go func() { n.runSink(ctx, s); done <- struct{}{} }()
	}
	for range n.sinks {
		<-done
	}
}

// sinkState is one sink's loop state.
type sinkState struct {
	failing  int // consecutive failed attempts
	backoff  time.Duration
	retryAt  time.Time
	lastWarn error
}

func (n *Notifier) runSink(ctx context.Context, s Sink) {
	st := &sinkState{}
	tick := time.NewTicker(n.opts.Poll)
	defer tick.Stop()
	for {
		n.step(ctx, s, st)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// step holds the sink's cursor and delivers what follows it, until an event fails.
func (n *Notifier) step(ctx context.Context, s Sink, st *sinkState) {
	now := n.opts.Now()
	if now.Before(st.retryAt) {
		return
	}
	cursor, held, err := n.db.HoldNotifyCursor(ctx, s.Name(), n.holder, now, now.Add(n.opts.Lease))
	if err != nil || !held {
		return
	}
	entries, err := n.db.AuditAfter(ctx, cursor, 100)
	if err != nil {
		return
	}
	for _, e := range entries {
		if ctx.Err() != nil || n.opts.Now().Sub(e.At) < n.opts.Settle {
			return
		}
		ev, ok, err := n.event(ctx, s, e)
		if err != nil {
			return // the burst count could not be read: this entry again next time
		}
		if ok {
			// The lease again before each delivery, so that it outlasts the send (10 s) by far:
			// a slow receiver must not let another process take the cursor and send it twice.
			now := n.opts.Now()
			if _, held, err := n.db.HoldNotifyCursor(ctx, s.Name(), n.holder, now, now.Add(n.opts.Lease)); err != nil || !held {
				return
			}
			if err := n.deliver(ctx, s, ev, st); err != nil {
				if n.opts.Now().Sub(e.At) <= n.opts.MaxAge {
					return // retried at st.retryAt, from this entry
				}
				n.m.dropped.WithLabelValues(s.Name()).Inc()
				n.log.Warn("notification dropped: undelivered for too long", "sink", s.Name(), "kind", ev.Kind, "id", ev.ID)
			}
		}
		if err := n.db.AdvanceNotifyCursor(ctx, s.Name(), n.holder, e.ID); err != nil {
			return
		}
	}
}

// event is the entry's notification for s, if any: its kind is wanted, and a failed login
// only when it opens a burst.
func (n *Notifier) event(ctx context.Context, s Sink, e store.AuditEvent) (Event, bool, error) {
	ev, ok := events.FromAudit(events.Entry(e))
	if !ok || !s.Wants(ev.Kind) {
		return Event{}, false, nil
	}
	if ev.Kind == events.LoginFailedBurst {
		since := events.WindowStart(e.At, n.opts.BurstWindow)
		c, err := n.db.CountAudit(ctx, e.Action, e.ClientIP, since, e.ID)
		if err != nil {
			return Event{}, false, err
		}
		if !events.Burst(c, n.opts.BurstThreshold) {
			return Event{}, false, nil
		}
		ev.Message = burstMessage(ev.Address, n.opts.BurstThreshold, n.opts.BurstWindow)
	}
	return ev, true, nil
}

func burstMessage(addr string, threshold int, window time.Duration) string {
	if addr == "" {
		addr = "an unknown address"
	}
	return fmt.Sprintf("%s failed to log in %d times within %s; further failures in this window are not notified (a ban is).",
		addr, threshold, window)
}

// deliver sends one event, keeping the sink's failure state: a log line on the first failure
// and on recovery, exponential backoff in between.
func (n *Notifier) deliver(ctx context.Context, s Sink, ev Event, st *sinkState) error {
	sendCtx, cancel := context.WithTimeout(ctx, n.opts.SendTimeout)
	defer cancel()
	err := s.Send(sendCtx, ev)
	if err == nil {
		n.m.sent.WithLabelValues(s.Name()).Inc()
		if st.failing > 0 {
			n.log.Info("notifications delivered again", "sink", s.Name(), "failed_attempts", st.failing)
		}
		*st = sinkState{}
		return nil
	}
	n.m.failed.WithLabelValues(s.Name()).Inc()
	if st.failing == 0 {
		n.log.Warn("notification delivery failing; retrying with backoff", "sink", s.Name(), "kind", ev.Kind, "error", err)
	}
	st.failing++
	if st.backoff == 0 {
		st.backoff = n.opts.MinBackoff
	} else {
		st.backoff = min(2*st.backoff, n.opts.MaxBackoff)
	}
	st.retryAt = n.opts.Now().Add(st.backoff)
	return err
}
