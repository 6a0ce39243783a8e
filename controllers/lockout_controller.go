package controllers

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/conditions"
	"github.com/mss-login/mss-login/internal/predicates"
	"github.com/mss-login/mss-login/internal/store"
)

// LockoutFinalizer lifts the ban in the database before a deleted Lockout goes away.
const LockoutFinalizer = "auth.mss-login.dev/lift-ban"

// lockoutReconciler handles `kubectl delete lockout`: it lifts the ban, then releases the
// object. Everything else about Lockouts is the mirror's job.
type lockoutReconciler struct {
	deps
	recorder events.EventRecorder
	metrics  *Metrics
}

func (r *lockoutReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	var l authv1alpha1.Lockout
	if err := r.client.Get(ctx, req.NamespacedName, &l); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if l.DeletionTimestamp.IsZero() || !controllerutil.ContainsFinalizer(&l, LockoutFinalizer) {
		return ctrl.Result{}, nil
	}
	if err := r.lift(ctx, l.Spec); err != nil {
		r.metrics.errors.WithLabelValues("Lockout").Inc()
		before := l.DeepCopy()
		conditions.Set(&l.Status.Conditions, metav1.Condition{
			Type: authv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "LiftFailed",
			Message: fmt.Sprintf("deleting: the ban could not be lifted yet, retrying: %v", err),
		}, l.Generation)
		_ = r.client.Status().Patch(ctx, &l, client.MergeFrom(before))
		r.recorder.Eventf(&l, nil, corev1.EventTypeWarning, "LiftFailed", "Delete", "ban on %s not lifted yet, retrying: %v", l.Spec.Subject, err)
		return ctrl.Result{}, err
	}
	r.metrics.lockoutsLifted.Inc()
	r.recorder.Eventf(&l, nil, corev1.EventTypeNormal, "BanLifted", "Delete", "the ban on %s was lifted because this Lockout was deleted", l.Spec.Subject)
	patch := client.MergeFrom(l.DeepCopy())
	controllerutil.RemoveFinalizer(&l, LockoutFinalizer)
	return ctrl.Result{}, client.IgnoreNotFound(r.client.Patch(ctx, &l, patch))
}

// lift removes the ban the object stands for; a ban already gone counts as lifted, and so
// does a subject that cannot be a ban at all (nothing to lift), so the finalizer finishes.
func (r *lockoutReconciler) lift(ctx context.Context, spec authv1alpha1.LockoutSpec) error {
	var err error
	switch spec.Kind {
	case authv1alpha1.LockoutIP:
		addr, perr := netip.ParseAddr(spec.Subject)
		if perr != nil {
			return nil
		}
		if err = r.store.Unban(ctx, addr); err == nil {
			// Also forget the failures that led to the ban: otherwise the cooldown for them
			// still refuses the next login, and "delete the Lockout" would not let anyone in.
			err = r.store.ResetFailures(ctx, store.ScopeIP, addr.Unmap().String())
		}
	case authv1alpha1.LockoutDevice:
		err = r.store.UnlockDevice(ctx, spec.Subject)
	default:
		return nil
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	// The audit trail records who lifted the ban; a failure here must not keep the object.
	_ = r.store.Audit(ctx, store.AuditEvent{Actor: "operator", Action: "ban.lifted", Target: spec.Subject,
		Detail: "Lockout object deleted in Kubernetes"})
	return nil
}

func setupLockouts(mgr ctrl.Manager, d deps, o Options, copts controller.Options) error {
	rec := mgr.GetEventRecorder("mss-login-lockout")
	r := &lockoutReconciler{deps: d, recorder: rec, metrics: o.Metrics}
	inNamespace := predicate.NewPredicateFuncs(func(obj client.Object) bool { return obj.GetNamespace() == o.LockoutNamespace })
	if err := ctrl.NewControllerManagedBy(mgr).Named("lockout").
		For(&authv1alpha1.Lockout{}, builder.WithPredicates(inNamespace, predicates.SpecOrDeletion)).
		WithOptions(copts).Complete(r); err != nil {
		return err
	}
	return mgr.Add(&lockoutMirror{
		deps: d, namespace: o.LockoutNamespace, max: o.LockoutMax, poll: o.LockoutPoll, window: o.FailureWindow,
		metrics: o.Metrics, recorder: rec,
	})
}
