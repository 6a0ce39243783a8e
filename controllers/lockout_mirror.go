package controllers

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/store"
)

// Labels of the Lockout objects the mirror writes.
const (
	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "mss-login"
)

// fullResync bounds how long the mirror trusts the change counters alone: it also catches
// objects removed by hand (finalizer stripped) and clock-driven changes it did not foresee.
const fullResync = 30 * time.Second

// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=lockouts,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=lockouts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=lockouts/finalizers,verbs=update

// lockoutMirror copies the active bans of the database into Lockout objects. It runs on the
// leader only. Each poll is one read of the change counters; the bans and the objects are
// listed only when a counter moved, a ban expired, or fullResync passed.
type lockoutMirror struct {
	deps
	namespace string
	max       int
	poll      time.Duration
	window    time.Duration
	metrics   *Metrics
	recorder  events.EventRecorder

	lastVersions map[string]int64
	lastFull     time.Time
	next         time.Time // earliest expiry among mirrored bans
	lastOverflow int
	lastWarned   time.Time
}

// NeedLeaderElection: two mirrors would race to create and delete the same objects.
func (m *lockoutMirror) NeedLeaderElection() bool { return true }

// Start polls until ctx ends. A failed pass is logged and retried at the next poll.
func (m *lockoutMirror) Start(ctx context.Context) error {
	logger := log.FromContext(ctx).WithName("lockout-mirror")
	t := time.NewTicker(m.poll)
	defer t.Stop()
	failing := false
	for {
		if err := m.pass(ctx); err != nil {
			if !failing {
				logger.Error(err, "mirroring lockouts failed; retrying every poll")
			}
			failing = true
			m.metrics.errors.WithLabelValues("Lockout").Inc()
		} else if failing {
			logger.Info("mirroring lockouts works again")
			failing = false
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// pass runs one poll.
func (m *lockoutMirror) pass(ctx context.Context) error {
	now := m.now()
	versions, err := m.store.Versions(ctx)
	if err != nil {
		return err
	}
	if m.lastVersions != nil && versions[store.TopicIPRules] == m.lastVersions[store.TopicIPRules] &&
		versions[store.TopicDevices] == m.lastVersions[store.TopicDevices] &&
		(m.next.IsZero() || now.Before(m.next)) && now.Sub(m.lastFull) < fullResync {
		return nil
	}
	bans, err := m.store.Bans(ctx, now)
	if err != nil {
		return err
	}
	devices, err := m.store.LockedDevices(ctx, now)
	if err != nil {
		return err
	}
	want := wantedLockouts(bans, devices)
	// Uncached: the cap must hold even right after this mirror created objects that a
	// cache would not show yet.
	var have authv1alpha1.LockoutList
	if err := m.reader.List(ctx, &have, client.InNamespace(m.namespace), client.MatchingLabels{labelManagedBy: managedBy}); err != nil {
		return err
	}
	plan := planMirror(want, have.Items, m.max)
	for i := range plan.Create {
		if err := m.create(ctx, plan.Create[i], now); err != nil {
			return err
		}
	}
	for i := range plan.Update {
		if err := m.client.Update(ctx, &plan.Update[i]); err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			return err
		}
	}
	for i := range plan.Delete {
		if err := m.remove(ctx, &plan.Delete[i]); err != nil {
			return err
		}
	}
	mirrored := len(have.Items) - len(plan.Delete) + len(plan.Create)
	m.metrics.lockoutsMirrored.Set(float64(mirrored))
	m.metrics.lockoutsOverflow.Set(float64(plan.Overflow))
	m.reportOverflow(plan.Overflow, now)
	m.lastVersions, m.lastFull, m.next = versions, now, nextExpiry(want)
	return nil
}

func (m *lockoutMirror) create(ctx context.Context, l authv1alpha1.Lockout, now time.Time) error {
	l.Namespace = m.namespace
	l.Labels = map[string]string{labelManagedBy: managedBy}
	controllerutil.AddFinalizer(&l, LockoutFinalizer)
	if l.Spec.Kind == authv1alpha1.LockoutIP {
		n, err := m.store.Failures(ctx, store.ScopeIP, l.Spec.Subject, now, m.window)
		if err != nil {
			return err
		}
		l.Spec.Attempts = int32(n)
	}
	if err := m.client.Create(ctx, &l); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("creating Lockout %s: %w", l.Name, err)
	}
	return nil
}

// remove deletes an object whose ban is gone. The finalizer is taken off first: the ban has
// already ended, and lifting "it" again could lift a new ban of the same address.
func (m *lockoutMirror) remove(ctx context.Context, l *authv1alpha1.Lockout) error {
	if controllerutil.ContainsFinalizer(l, LockoutFinalizer) {
		patch := client.MergeFrom(l.DeepCopy())
		controllerutil.RemoveFinalizer(l, LockoutFinalizer)
		if err := m.client.Patch(ctx, l, patch); err != nil {
			return client.IgnoreNotFound(err)
		}
	}
	return client.IgnoreNotFound(m.client.Delete(ctx, l))
}

// reportOverflow emits a Warning Event on the namespace when bans go unmirrored, once per
// change of the count and at most every ten minutes.
func (m *lockoutMirror) reportOverflow(overflow int, now time.Time) {
	if overflow == 0 {
		m.lastOverflow = 0
		return
	}
	if overflow == m.lastOverflow && now.Sub(m.lastWarned) < 10*time.Minute {
		return
	}
	m.lastOverflow, m.lastWarned = overflow, now
	// The Event is about the namespace, and recorded in it (not in "default", where events
	// about cluster-scoped objects go) so that `kubectl get events -n <namespace>` shows it.
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: m.namespace, Namespace: m.namespace}}
	ns.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	m.recorder.Eventf(ns, nil, corev1.EventTypeWarning, "LockoutMirrorFull", "Mirror",
		"%d active bans are not mirrored as Lockout objects: lockout_mirror.max_objects (%d) is reached; list them with `mss-login admin lockouts list`",
		overflow, m.max)
}
