package controllers_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"sigs.k8s.io/controller-runtime/pkg/client"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/controllers"
	"github.com/mss-login/mss-login/internal/store"
)

func (h *harness) lockouts() map[string]authv1alpha1.Lockout {
	var list authv1alpha1.LockoutList
	if err := h.c.List(h.ctx, &list, client.InNamespace(h.ns)); err != nil {
		h.t.Fatal(err)
	}
	out := map[string]authv1alpha1.Lockout{}
	for _, l := range list.Items {
		out[l.Spec.Subject] = l
	}
	return out
}

func (h *harness) gauge(name string) float64 {
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return metricValue(mf.GetMetric()[0])
		}
	}
	return -1
}

func metricValue(m *dto.Metric) float64 {
	if m.GetGauge() != nil {
		return m.GetGauge().GetValue()
	}
	return m.GetCounter().GetValue()
}

// Ban → Lockout within 5 s → kubectl delete → ban row gone and object gone; expiry removes
// the object; a device lock round-trips the same way.
func TestLockoutRoundTrip(t *testing.T) {
	for _, b := range backends(store.SQLite, store.PostgreSQL) {
		t.Run(string(b), func(t *testing.T) {
			h := newHarness(t, b)
			addr := netip.MustParseAddr("203.0.113.5")
			now := time.Now()
			for i := 0; i < 3; i++ {
				if _, err := h.store.RecordFailure(h.ctx, store.ScopeIP, addr.String(), now, time.Hour); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := h.store.BanIP(h.ctx, addr, now, now.Add(time.Hour), "too many failures"); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			var l authv1alpha1.Lockout
			h.eventually(5*time.Second, "Lockout for the ban", func() error {
				var ok bool
				if l, ok = h.lockouts()[addr.String()]; !ok {
					return errors.New("no object yet")
				}
				return nil
			})
			t.Logf("ban mirrored in %s", time.Since(start).Round(time.Millisecond))
			if l.Name != "ip-203-0-113-5" || l.Spec.Kind != authv1alpha1.LockoutIP || l.Spec.Attempts != 3 ||
				l.Spec.ExpiresAt == nil || l.Spec.Reason != "too many failures" || l.Spec.Source != store.SourceAutomatic {
				t.Fatalf("Lockout %+v", l)
			}
			// kubectl delete → the ban is lifted, then the object goes.
			h.delete(l.Name, &l)
			h.gone(l.Name, &l, 5*time.Second)
			if bans, _ := h.store.Bans(h.ctx, time.Now()); len(bans) != 0 {
				t.Fatalf("ban still in the database: %+v", bans)
			}
			// It is not re-created.
			time.Sleep(time.Second)
			if _, ok := h.lockouts()[addr.String()]; ok {
				t.Fatal("the lifted ban came back")
			}

			// Expiry removes the object, and the ban row is not touched by that.
			short := netip.MustParseAddr("2001:db8::7")
			if _, err := h.store.BanIP(h.ctx, short, time.Now(), time.Now().Add(2*time.Second), "short"); err != nil {
				t.Fatal(err)
			}
			h.eventually(5*time.Second, "short ban mirrored", func() error {
				if _, ok := h.lockouts()[short.String()]; !ok {
					return errors.New("not yet")
				}
				return nil
			})
			h.eventually(6*time.Second, "expired ban's object removed", func() error {
				if _, ok := h.lockouts()[short.String()]; ok {
					return errors.New("still there")
				}
				return nil
			})

			// Device lock.
			if _, err := h.store.LockDevice(h.ctx, "Device-ABC", time.Now(), time.Time{}, "locked"); err != nil {
				t.Fatal(err)
			}
			var dl authv1alpha1.Lockout
			h.eventually(5*time.Second, "device mirrored", func() error {
				var ok bool
				if dl, ok = h.lockouts()["Device-ABC"]; !ok {
					return errors.New("not yet")
				}
				return nil
			})
			if dl.Spec.Kind != authv1alpha1.LockoutDevice || dl.Spec.ExpiresAt != nil {
				t.Fatalf("device Lockout %+v", dl.Spec)
			}
			h.delete(dl.Name, &dl)
			h.gone(dl.Name, &dl, 5*time.Second)
			if devs, _ := h.store.LockedDevices(h.ctx, time.Now()); len(devs) != 0 {
				t.Fatalf("device still locked: %+v", devs)
			}
			// An unban in the database removes the object.
			other := netip.MustParseAddr("198.51.100.77")
			h.store.BanIP(h.ctx, other, time.Now(), time.Time{}, "manual")
			h.eventually(5*time.Second, "mirrored", func() error {
				if _, ok := h.lockouts()[other.String()]; !ok {
					return errors.New("not yet")
				}
				return nil
			})
			if err := h.store.Unban(h.ctx, other); err != nil {
				t.Fatal(err)
			}
			h.eventually(5*time.Second, "object of a lifted ban removed", func() error {
				if _, ok := h.lockouts()[other.String()]; ok {
					return errors.New("still there")
				}
				return nil
			})
		})
	}
}

// The mirror never creates more objects than the limit; the rest shows in a metric and an
// Event.
func TestLockoutMirrorLimit(t *testing.T) {
	h := newHarness(t, store.SQLite, withOptions(func(o *controllers.Options) { o.LockoutMax = 3 }))
	for i := 1; i <= 5; i++ {
		a := netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})
		if _, err := h.store.BanIP(h.ctx, a, time.Now().Add(time.Duration(i)*time.Second), time.Time{}, "x"); err != nil {
			t.Fatal(err)
		}
	}
	h.eventually(5*time.Second, "3 objects and 2 counted", func() error {
		if n := len(h.lockouts()); n != 3 {
			return fmt.Errorf("%d objects", n)
		}
		if v := h.gauge("mss_login_lockouts_unmirrored"); v != 2 {
			return fmt.Errorf("unmirrored gauge %v", v)
		}
		return nil
	})
	time.Sleep(2 * time.Second)
	if n := len(h.lockouts()); n != 3 {
		t.Fatalf("%d objects after a while, limit 3", n)
	}
	h.eventually(5*time.Second, "overflow Event", func() error {
		if got := h.events(h.ns); !slices.Contains(got, "LockoutMirrorFull") {
			return fmt.Errorf("events %v", got)
		}
		return nil
	})
}
