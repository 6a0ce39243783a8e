package store_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/testenv"
)

// The notifier's cursor: a new sink starts at the newest entry, one holder at a time (also when
// many race for it), the lease passes on when it runs out, only the holder moves the cursor and
// never backwards; the trail is read after the cursor in order, and failed logins are counted
// per address and window.
func TestNotifyCursor(t *testing.T) {
	ctx := context.Background()
	testenv.ForEachBackend(t, func(t *testing.T, s *store.Store) {
		audit := func(action, ip string, at time.Time) {
			t.Helper()
			if err := s.Audit(ctx, store.AuditEvent{Action: action, ClientIP: ip, At: at, Detail: ""}); err != nil {
				t.Fatal(err)
			}
		}
		now := time.Now()
		audit("user.created", "", now) // history, before the sink exists
		cur, held, err := s.HoldNotifyCursor(ctx, "ntfy", "a", now, now.Add(30*time.Second))
		if err != nil || !held {
			t.Fatalf("first hold: %v %v", held, err)
		}
		if evs, _ := s.AuditAfter(ctx, cur, 10); len(evs) != 0 {
			t.Fatalf("a new sink would send history: %+v", evs)
		}
		if _, held, _ := s.HoldNotifyCursor(ctx, "ntfy", "b", now.Add(time.Second), now.Add(31*time.Second)); held {
			t.Fatal("b holds a cursor a's live lease holds")
		}
		if _, held, _ := s.HoldNotifyCursor(ctx, "ntfy", "a", now.Add(time.Second), now.Add(31*time.Second)); !held {
			t.Fatal("a could not renew its lease")
		}
		if _, held, _ := s.HoldNotifyCursor(ctx, "ntfy", "a", now.Add(time.Second), now.Add(31*time.Second)); !held {
			t.Fatal("a renewing with the same values lost its lease (MySQL's unchanged rows)")
		}

		for _, ip := range []string{"192.0.2.1", "192.0.2.1", "192.0.2.2", "192.0.2.1"} {
			audit("login.failure", ip, now)
		}
		evs, err := s.AuditAfter(ctx, cur, 10)
		if err != nil || len(evs) != 4 || evs[0].ID <= cur || evs[0].ID >= evs[3].ID {
			t.Fatalf("after the cursor: %+v %v", evs, err)
		}
		if n, err := s.CountAudit(ctx, "login.failure", "192.0.2.1", now.Add(-time.Minute), evs[1].ID); err != nil || n != 2 {
			t.Errorf("failures of .1 up to the second entry: %d %v", n, err)
		}
		if n, _ := s.CountAudit(ctx, "login.failure", "192.0.2.1", now.Add(time.Minute), evs[3].ID); n != 0 {
			t.Errorf("failures before the window counted: %d", n)
		}

		if err := s.AdvanceNotifyCursor(ctx, "ntfy", "b", evs[3].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AdvanceNotifyCursor(ctx, "ntfy", "a", evs[1].ID); err != nil {
			t.Fatal(err)
		}
		if err := s.AdvanceNotifyCursor(ctx, "ntfy", "a", evs[0].ID); err != nil { // backwards: ignored
			t.Fatal(err)
		}
		// The lease ran out: b takes over where a left off.
		later := now.Add(time.Minute)
		c, held, err := s.HoldNotifyCursor(ctx, "ntfy", "b", later, later.Add(30*time.Second))
		if err != nil || !held || c != evs[1].ID {
			t.Fatalf("b after a's lease: cursor %d (want %d) held %v %v", c, evs[1].ID, held, err)
		}
		if _, held, _ := s.HoldNotifyCursor(ctx, "ntfy", "a", later, later.Add(30*time.Second)); held {
			t.Fatal("a still holds the cursor b took")
		}

		// Ten processes race for a new sink: exactly one holds it.
		var wg sync.WaitGroup
		var mu sync.Mutex
		holders := 0
		for i := range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, held, err := s.HoldNotifyCursor(ctx, "webhook:ops", string(rune('a'+i)), now, now.Add(30*time.Second))
				if err != nil {
					t.Error(err)
				}
				if held {
					mu.Lock()
					holders++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if holders != 1 {
			t.Errorf("%d processes hold one cursor", holders)
		}
	})
}
