package controllers

import (
	"cmp"
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/conditions"
)

// rowsFinalizer keeps a resource until its rows in the users database are released.
const rowsFinalizer = "auth.mss-login.dev/database-rows"

// Object is a resource that owns rows in the users database.
type Object interface {
	client.Object
	GetSyncStatus() *authv1alpha1.SyncStatus
}

// outcome is what a syncer reports after applying a resource.
type outcome struct {
	// Ready is true when the database matches the resource.
	Ready bool
	// Reason and Message of the Ready condition (CamelCase reason, human message). The
	// message never holds a password, hash or Secret value.
	Reason, Message string
	// Conditions besides Ready (for example PasswordSynced).
	Conditions []metav1.Condition
	// Changed lists what was written ("created", "role", "password", …); empty when the
	// database already matched.
	Changed []string
	// NewInput is true when something besides the spec moved since the last apply (a new
	// Secret version, an expiry): writes are then not drift.
	NewInput bool
	// Events to record besides the ones the generic path records.
	Events []event
	// RequeueAfter asks for the next check earlier than the resync (e.g. at an expiry).
	RequeueAfter time.Duration
}

// event is a Kubernetes Event about the resource.
type event struct {
	Type, Reason, Note string
}

// syncer applies one kind to the database. Apply and Release must be idempotent: they run
// again after any failure and after a manager restart.
type syncer[T Object] interface {
	// Apply makes the database match obj. It returns an error only for failures worth a
	// retry with backoff (the database is unreachable); a refusal (conflict, missing role)
	// is an outcome that is not Ready.
	Apply(ctx context.Context, obj T, ownerRef string) (outcome, error)
	// Release handles obj's rows when obj is deleted. Rows already gone are not an error.
	Release(ctx context.Context, obj T, ownerRef string) error
}

// reconciler is the one generic path for every kind that owns rows in the users database.
type reconciler[T Object] struct {
	Client   client.Client
	Kind     string // "ComfyUser", … — also the prefix of the owner_ref values
	New      func() T
	Syncer   syncer[T]
	Recorder events.EventRecorder
	Resync   time.Duration // drift check interval; jittered by up to +20 %
	Metrics  *Metrics
	// Ready, when set, is asked before every apply: an error is reported as the database
	// being unavailable (the manager waits to migrate it).
	Ready func() error
}

// Reconcile: finalize if deleting → ensure the finalizer → apply → patch status → requeue.
func (r *reconciler[T]) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	obj := r.New()
	if err := r.Client.Get(ctx, req.NamespacedName, obj); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	ref := ownerRef(r.Kind, obj)
	if !obj.GetDeletionTimestamp().IsZero() {
		return ctrl.Result{}, r.finalize(ctx, obj, ref)
	}
	if controllerutil.AddFinalizer(obj, rowsFinalizer) {
		// The finalizer is in place before the first row is written, so no row can outlive
		// its resource unnoticed.
		if err := r.Client.Update(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}

	before := obj.DeepCopyObject().(T)
	// A copy: the new condition is written over the list's entry in place, and record compares
	// the reasons of the two.
	var prev *metav1.Condition
	if c := meta.FindStatusCondition(obj.GetSyncStatus().Conditions, authv1alpha1.ConditionReady); c != nil {
		prev = c.DeepCopy()
	}
	// In sync before this run: Ready at this very generation. Writes needed now, without a
	// new input, mean someone changed the rows behind the operator's back.
	wasInSync := prev != nil && prev.Status == metav1.ConditionTrue && obj.GetSyncStatus().ObservedGeneration == obj.GetGeneration()
	var out outcome
	var applyErr error
	if r.Ready != nil {
		applyErr = r.Ready()
	}
	if applyErr == nil {
		out, applyErr = r.Syncer.Apply(ctx, obj, ref)
	}
	if applyErr != nil {
		r.Metrics.errors.WithLabelValues(r.Kind).Inc()
		out = outcome{Reason: "DatabaseUnavailable", Message: fmt.Sprintf("not applied, retrying: %v", applyErr)}
		log.FromContext(ctx).Error(applyErr, "apply failed, retrying with backoff")
	}
	st := obj.GetSyncStatus()
	st.ObservedGeneration = obj.GetGeneration()
	if out.Ready || len(out.Changed) > 0 {
		st.OwnerRef = ref
	}
	setCondition(st, obj.GetGeneration(), authv1alpha1.ConditionReady, out.Ready, out.Reason, out.Message)
	for _, c := range out.Conditions {
		conditions.Set(&st.Conditions, c, obj.GetGeneration())
	}
	if err := r.patchStatus(ctx, before, obj); err != nil {
		return ctrl.Result{}, err
	}
	r.record(obj, prev, out, isDrift(wasInSync, out))
	if applyErr != nil {
		return ctrl.Result{}, applyErr
	}
	return ctrl.Result{RequeueAfter: r.next(out.RequeueAfter)}, nil
}

// finalize releases the rows and then the finalizer. A failure is reported in status and
// retried with backoff; it never blocks forever, because Release treats rows that are
// already gone as released.
func (r *reconciler[T]) finalize(ctx context.Context, obj T, ref string) error {
	if !controllerutil.ContainsFinalizer(obj, rowsFinalizer) {
		return nil
	}
	if err := r.Syncer.Release(ctx, obj, ref); err != nil {
		r.Metrics.errors.WithLabelValues(r.Kind).Inc()
		before := obj.DeepCopyObject().(T)
		setCondition(obj.GetSyncStatus(), obj.GetGeneration(), authv1alpha1.ConditionReady, false, "ReleaseFailed",
			fmt.Sprintf("deleting: the database rows could not be released yet, retrying: %v", err))
		if perr := r.patchStatus(ctx, before, obj); perr != nil && !apierrors.IsNotFound(perr) {
			log.FromContext(ctx).Error(perr, "patching status")
		}
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "ReleaseFailed", "Delete", "rows not released yet, retrying: %v", err)
		return err
	}
	patch := client.MergeFrom(obj.DeepCopyObject().(T))
	controllerutil.RemoveFinalizer(obj, rowsFinalizer)
	if err := r.Client.Patch(ctx, obj, patch); err != nil {
		return client.IgnoreNotFound(err)
	}
	r.Metrics.applied.WithLabelValues(r.Kind, "released").Inc()
	return nil
}

// patchStatus patches the status when anything changed; the whole object is compared because
// the kinds keep fields of their own beside SyncStatus (roleName, rules, userID, …).
func (r *reconciler[T]) patchStatus(ctx context.Context, before, after T) error {
	if equality.Semantic.DeepEqual(before, after) {
		return nil
	}
	return r.Client.Status().Patch(ctx, after, client.MergeFrom(before))
}

// record emits the Events a person should notice: writes, drift corrections, and a change
// of the reason a resource is not applied (not on every retry, so Events do not pile up).
func (r *reconciler[T]) record(obj T, prev *metav1.Condition, out outcome, drift bool) {
	switch {
	case drift:
		r.Metrics.drift.WithLabelValues(r.Kind).Inc()
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, "DriftCorrected", "Apply",
			"the database was changed behind the operator's back; put back: %v", out.Changed)
	case len(out.Changed) > 0:
		r.Recorder.Eventf(obj, nil, corev1.EventTypeNormal, "Applied", "Apply", "written to the database: %v", out.Changed)
	}
	if len(out.Changed) > 0 {
		r.Metrics.applied.WithLabelValues(r.Kind, "applied").Inc()
	}
	if !out.Ready && (prev == nil || prev.Reason != out.Reason) {
		r.Recorder.Eventf(obj, nil, corev1.EventTypeWarning, out.Reason, "Apply", "%s", out.Message)
	}
	for _, e := range out.Events {
		r.Recorder.Eventf(obj, nil, e.Type, e.Reason, "Apply", "%s", e.Note)
	}
}

// isDrift: rows had to be written although the resource was in sync at this generation and
// nothing else it depends on moved.
func isDrift(wasInSync bool, out outcome) bool {
	return wasInSync && len(out.Changed) > 0 && !out.NewInput
}

// next is the time to the next drift check: the resync with up to 20 % jitter, so that a
// thousand resources created together do not all resync in the same second.
func (r *reconciler[T]) next(earlier time.Duration) time.Duration {
	d := wait.Jitter(r.Resync, 0.2)
	if earlier > 0 && earlier < d {
		return earlier
	}
	return d
}

func setCondition(st *authv1alpha1.SyncStatus, gen int64, typ string, ok bool, reason, msg string) {
	conditions.Set(&st.Conditions, metav1.Condition{Type: typ, Status: conditions.Status(ok), Reason: cmp.Or(reason, "Applied"), Message: msg}, gen)
}
