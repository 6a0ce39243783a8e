package controllers

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/store"
)

// lockoutName is the object name for a ban: readable for addresses
// ("ip-192-0-2-1", "ip-2001-db8--1"), a digest for device ids, which are arbitrary client
// strings.
func lockoutName(kind authv1alpha1.LockoutKind, subject string) string {
	if kind == authv1alpha1.LockoutIP {
		n := "ip-" + strings.NewReplacer(".", "-", ":", "-").Replace(strings.ToLower(subject))
		if strings.HasSuffix(n, "-") { // "2001:db8::" → a name must end with a letter or digit
			n += "0"
		}
		return n
	}
	sum := sha256.Sum256([]byte(subject))
	return "device-" + hex.EncodeToString(sum[:])[:20]
}

// wantedLockouts lists the active bans as Lockout specs, newest first: IP bans (automatic and
// manual; one object per address) and device locks.
func wantedLockouts(bans []store.IPRule, devices []store.LockedDevice) []authv1alpha1.Lockout {
	byName := map[string]*authv1alpha1.Lockout{}
	var order []string
	add := func(kind authv1alpha1.LockoutKind, subject, source, reason string, since, expires time.Time) {
		name := lockoutName(kind, subject)
		if l, ok := byName[name]; ok {
			// A manual and an automatic ban of one address: the object shows the one that
			// lasts longest; deleting it lifts both.
			if l.Spec.ExpiresAt != nil && (expires.IsZero() || expires.After(l.Spec.ExpiresAt.Time)) {
				l.Spec.ExpiresAt = timePtr(expires)
				l.Spec.Source, l.Spec.Reason = source, reason
			}
			return
		}
		l := &authv1alpha1.Lockout{Spec: authv1alpha1.LockoutSpec{
			Kind: kind, Subject: subject, Source: source, Reason: truncateReason(reason),
			Since: timePtr(since), ExpiresAt: timePtr(expires),
		}}
		l.Name = name
		byName[name] = l
		order = append(order, name)
	}
	for _, b := range bans {
		add(authv1alpha1.LockoutIP, b.CIDR.Addr().String(), b.Source, b.Reason, b.CreatedAt, b.ExpiresAt)
	}
	for _, d := range devices {
		add(authv1alpha1.LockoutDevice, d.DeviceID, "", d.Reason, d.CreatedAt, d.ExpiresAt)
	}
	out := make([]authv1alpha1.Lockout, 0, len(order))
	for _, n := range order {
		out = append(out, *byName[n])
	}
	sort.SliceStable(out, func(i, j int) bool {
		ti, tj := sinceOf(out[i]), sinceOf(out[j])
		if !ti.Equal(tj) {
			return ti.After(tj)
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// mirrorPlan is what one pass of the mirror does.
type mirrorPlan struct {
	Create   []authv1alpha1.Lockout
	Update   []authv1alpha1.Lockout // existing objects with the new spec
	Delete   []authv1alpha1.Lockout // their ban expired or was lifted
	Overflow int                    // active bans without an object because of the cap
}

// planMirror compares the wanted objects with the existing ones. Objects already being
// deleted count as present (their finalizer is lifting the ban) and against the cap; new
// objects are created, newest ban first, only while fewer than max exist.
func planMirror(want, have []authv1alpha1.Lockout, max int) mirrorPlan {
	var p mirrorPlan
	wanted := map[string]authv1alpha1.Lockout{}
	for _, w := range want {
		wanted[w.Name] = w
	}
	existing := map[string]bool{}
	kept := 0
	for _, h := range have {
		existing[h.Name] = true
		w, ok := wanted[h.Name]
		switch {
		case !h.DeletionTimestamp.IsZero():
			kept++
		case !ok:
			p.Delete = append(p.Delete, h)
		default:
			kept++
			if !sameLockout(h.Spec, w.Spec) {
				u := h.DeepCopy()
				attempts := u.Spec.Attempts
				u.Spec = w.Spec
				u.Spec.Attempts = attempts
				p.Update = append(p.Update, *u)
			}
		}
	}
	for _, w := range want {
		if existing[w.Name] {
			continue
		}
		if kept >= max {
			p.Overflow++
			continue
		}
		p.Create = append(p.Create, w)
		kept++
	}
	return p
}

// sameLockout compares what the mirror owns in a spec; times to the second, the precision
// they have in the API. Attempts is a snapshot taken at creation and not compared.
func sameLockout(a, b authv1alpha1.LockoutSpec) bool {
	return a.Kind == b.Kind && a.Subject == b.Subject && a.Source == b.Source && a.Reason == b.Reason &&
		sameSecond(a.Since, b.Since) && sameSecond(a.ExpiresAt, b.ExpiresAt)
}

func sameSecond(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Unix() == b.Unix()
}

// nextExpiry is the earliest expiry among the wanted objects (zero: none expires).
func nextExpiry(want []authv1alpha1.Lockout) time.Time {
	var next time.Time
	for _, w := range want {
		if w.Spec.ExpiresAt != nil && (next.IsZero() || w.Spec.ExpiresAt.Time.Before(next)) {
			next = w.Spec.ExpiresAt.Time
		}
	}
	return next
}

func sinceOf(l authv1alpha1.Lockout) time.Time {
	if l.Spec.Since == nil {
		return time.Time{}
	}
	return l.Spec.Since.Time
}

func timePtr(t time.Time) *metav1.Time {
	if t.IsZero() {
		return nil
	}
	m := metav1.NewTime(t.UTC().Truncate(time.Second))
	return &m
}

func truncateReason(s string) string {
	if len(s) > 255 {
		return s[:255]
	}
	return s
}
