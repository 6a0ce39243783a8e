package s3mount

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	authv1alpha1 "github.com/mss-login/mss-login/api/v1alpha1"
	"github.com/mss-login/mss-login/internal/conditions"
	"github.com/mss-login/mss-login/internal/predicates"
	"github.com/mss-login/mss-login/internal/s3sync"
	"github.com/mss-login/mss-login/internal/store"
	"github.com/mss-login/mss-login/internal/ttlcache"
)

// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=s3mounts,verbs=get;list;watch
// +kubebuilder:rbac:groups=auth.mss-login.dev,resources=s3mounts/status,verbs=get;update;patch
// +kubebuilder:rbac:groups="",resources=pods,verbs=get;list;watch

// Options configure the S3Mount controller.
type Options struct {
	// Inject is what the pod webhook injects (the controller compares the pods' hashes with it).
	Inject InjectConfig
	// Recheck is how often a mount's bucket is checked again (default 5 minutes, +20 % jitter).
	Recheck time.Duration
	// Check proves a bucket reachable (default s3sync.Check; tests may count calls).
	Check func(context.Context, s3sync.Options) error
	// Store, when set, receives the models each mount's bucket holds (at every check), so that
	// the auth servers show them only to users with can_access_s3_storage.
	Store *store.Store
	// ListModels lists a bucket's models (default s3sync.ListModels).
	ListModels func(context.Context, s3sync.Options) (map[string][]string, error)
}

// Conditions of an S3Mount.
const (
	condReady           = "Ready"
	condBucketReachable = "BucketReachable"
	condPodsInjected    = "PodsInjected"
)

// Setup registers the S3Mount controller. Unlike the kinds of package controllers it owns no
// database rows, so it does not go through their Reconciler[T]. The pod webhook is registered
// apart (internal/webhook/v1).
func Setup(mgr ctrl.Manager, o Options) error {
	if o.Recheck <= 0 {
		o.Recheck = 5 * time.Minute
	}
	if o.Check == nil {
		o.Check = s3sync.Check
	}
	if o.ListModels == nil {
		o.ListModels = s3sync.ListModels
	}
	r := &reconciler{client: mgr.GetClient(), reader: mgr.GetAPIReader(), recorder: mgr.GetEventRecorder("mss-login-s3mount"), o: o,
		checked: ttlcache.New[types.NamespacedName, lastCheck](o.Recheck),
		census:  ttlcache.New[types.NamespacedName, lastCensus](min(censusEvery, o.Recheck))}
	return ctrl.NewControllerManagedBy(mgr).Named("s3mount").
		For(&authv1alpha1.S3Mount{}, builder.WithPredicates(predicates.SpecOrDeletion)).
		// Pods come and go: the counts follow. Only injected pods are cached (CacheByObject).
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(mountsOfPod)).
		// A Secret change is seen by its metadata; its value is read uncached when needed.
		WatchesMetadata(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.mountsOfSecret)).
		Complete(r)
}

func mountsOfPod(_ context.Context, o client.Object) []reconcile.Request {
	var out []reconcile.Request
	for name := range parseInjected(o.GetAnnotations()[AnnotationInjected]) {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}})
	}
	return out
}

func (r *reconciler) mountsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	var list authv1alpha1.S3MountList
	if err := r.client.List(ctx, &list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var out []reconcile.Request
	for _, m := range list.Items {
		if m.Spec.CredentialsSecretRef != nil && m.Spec.CredentialsSecretRef.Name == o.GetName() {
			key := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
			r.forget(key) // new credentials: ask the bucket again
			out = append(out, reconcile.Request{NamespacedName: key})
		}
	}
	return out
}

type reconciler struct {
	client   client.Client
	reader   client.Reader
	recorder events.EventRecorder
	o        Options

	// checked remembers the last check per mount, so a burst of pod events does not become a
	// burst of S3 requests: the bucket is asked again after Recheck, on a spec change, or
	// when the Secret changes.
	checked *ttlcache.Cache[types.NamespacedName, lastCheck]
	// census remembers the last list of the selector's pods: every event of an injected pod
	// reconciles its mounts, and that must not become a namespace-wide List each time. It
	// lives censusEvery (or Recheck when shorter).
	census *ttlcache.Cache[types.NamespacedName, lastCensus]
}

type lastCensus struct {
	names []string
	n     int
}

// censusEvery bounds how often a mount lists its selector's pods (uncached).
const censusEvery = 30 * time.Second

type lastCheck struct {
	reason, msg string
	reachable   *bool
}

func (r *reconciler) cachedCheck(ctx context.Context, m *authv1alpha1.S3Mount) (string, string, *bool) {
	key := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
	if c, ok := r.checked.Get(key, m.Generation); ok {
		return c.reason, c.msg, c.reachable
	}
	reason, msg, reachable := r.check(ctx, m)
	r.checked.Put(key, m.Generation, lastCheck{reason: reason, msg: msg, reachable: reachable})
	return reason, msg, reachable
}

func (r *reconciler) forget(key types.NamespacedName) {
	r.checked.Delete(key)
	r.census.Delete(key)
}

// Reconcile checks a mount (spec, Secret, bucket) and counts its pods into the status.
func (r *reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	m := &authv1alpha1.S3Mount{}
	if err := r.client.Get(ctx, req.NamespacedName, m); err != nil {
		if apierrors.IsNotFound(err) {
			r.forget(req.NamespacedName)
			if r.o.Store != nil { // its models are no longer the bucket's, nor is it a destination
				if err := r.o.Store.SetListedModels(ctx, mountSource(req.NamespacedName), nil); err != nil {
					return reconcile.Result{}, err
				}
				if err := r.o.Store.SetSecretSetting(ctx, store.S3DestinationSetting(req.Namespace, req.Name), ""); err != nil {
					return reconcile.Result{}, err
				}
			}
		}
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if m.DeletionTimestamp != nil {
		return reconcile.Result{}, nil // nothing to release: injected pods keep their sidecar until recreated
	}
	orig := m.DeepCopy()
	before := &orig.Status

	reason, msg, reachable := r.cachedCheck(ctx, m)
	hash := ConfigHash(m, r.o.Inject)
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(m.Namespace), client.MatchingLabels{LabelInjected: "true"}); err != nil {
		return reconcile.Result{}, err
	}
	census := countPods(m.Name, hash, pods.Items)
	missed, missedCount, err := r.podsWithoutSidecar(ctx, m)
	if err != nil {
		return reconcile.Result{}, err
	}
	m.Status.ConfigHash, m.Status.InjectedPods, m.Status.OutdatedPods = hash, int32(census.Injected), census.Outdated
	m.Status.UninjectedPods = missed
	m.Status.ObservedGeneration = m.Generation
	r.setPodsInjected(m, before, missed, missedCount)

	ready := reason == "Reachable"
	if ready {
		msg = fmt.Sprintf("bucket %q reachable; injected into %d pods", m.Spec.Bucket, census.Injected)
		if census.OutdatedCount > 0 {
			msg += fmt.Sprintf(", %d of them with an older configuration (they change when recreated)", census.OutdatedCount)
		}
	}
	setCondition(m, condReady, ready, reason, msg)
	if reachable != nil { // the bucket was asked: reason is Reachable or BucketUnreachable
		setCondition(m, condBucketReachable, *reachable, reason, msg)
	}

	prev := meta.FindStatusCondition(before.Conditions, condReady)
	if !ready && (prev == nil || prev.Reason != reason || prev.Message != msg) {
		r.recorder.Eventf(m, nil, corev1.EventTypeWarning, reason, "Check", "%s", msg)
	}
	// Into the audit trail (and so to notifications) once per turn to failing, or a new reason.
	if !ready && r.o.Store != nil && (prev == nil || prev.Status == metav1.ConditionTrue || prev.Reason != reason) {
		_ = r.o.Store.Audit(ctx, store.AuditEvent{Actor: "operator", Action: "s3mount.failing",
			Target: m.Namespace + "/" + m.Name, Detail: reason + ": " + msg})
	}
	if ready && (prev == nil || prev.Status != metav1.ConditionTrue) {
		r.recorder.Eventf(m, nil, corev1.EventTypeNormal, "Reachable", "Check", "%s", msg)
	}
	if !equality.Semantic.DeepEqual(before, &m.Status) {
		if err := r.client.Status().Patch(ctx, m, client.MergeFrom(orig)); err != nil {
			return reconcile.Result{}, client.IgnoreNotFound(err)
		}
	}
	jitter := time.Duration(rand.Int64N(int64(r.o.Recheck / 5)))
	return reconcile.Result{RequeueAfter: r.o.Recheck + jitter}, nil
}

// podsWithoutSidecar lists, uncached (the cache holds injected pods only), the pods the
// selector matches that lack this mount's sidecar: the webhook's failurePolicy is Ignore, so
// pods created while it was down start without one, and so do pods older than the mount.
func (r *reconciler) podsWithoutSidecar(ctx context.Context, m *authv1alpha1.S3Mount) ([]string, int, error) {
	key := types.NamespacedName{Namespace: m.Namespace, Name: m.Name}
	if c, ok := r.census.Get(key, m.Generation); ok {
		return c.names, c.n, nil
	}
	names, n, err := r.listWithoutSidecar(ctx, m)
	if err == nil {
		r.census.Put(key, m.Generation, lastCensus{names: names, n: n})
	}
	return names, n, err
}

func (r *reconciler) listWithoutSidecar(ctx context.Context, m *authv1alpha1.S3Mount) ([]string, int, error) {
	sel, ok := podSelector(m)
	if !ok {
		return nil, 0, nil // reported as InvalidSpec
	}
	var pods corev1.PodList
	if err := r.reader.List(ctx, &pods, client.InNamespace(m.Namespace), client.MatchingLabelsSelector{Selector: sel}); err != nil {
		return nil, 0, err
	}
	names, n := uninjected(m.Name, pods.Items)
	return names, n, nil
}

// setPodsInjected sets the PodsInjected condition, with a Warning Event when pods newly lack
// the sidecar.
func (r *reconciler) setPodsInjected(m *authv1alpha1.S3Mount, before *authv1alpha1.S3MountStatus, missed []string, n int) {
	if n == 0 {
		setCondition(m, condPodsInjected, true, "AllPodsInjected", "every running pod the selector matches has the sidecar")
		return
	}
	names := strings.Join(missed, ", ")
	if n > len(missed) {
		names += fmt.Sprintf(" and %d more", n-len(missed))
	}
	msg := fmt.Sprintf("%d pods match the selector but run without the sidecar (created while the webhook was unavailable, or before this S3Mount): %s; they get it when recreated (kubectl rollout restart)", n, names)
	setCondition(m, condPodsInjected, false, "PodsWithoutSidecar", msg)
	if prev := meta.FindStatusCondition(before.Conditions, condPodsInjected); prev == nil || prev.Message != msg {
		r.recorder.Eventf(m, nil, corev1.EventTypeWarning, "PodsWithoutSidecar", "Census", "%s", msg)
	}
}

// check validates the spec and the Secret and asks the bucket. reachable is nil when the
// bucket was not asked (the spec or the Secret is wrong first).
func (r *reconciler) check(ctx context.Context, m *authv1alpha1.S3Mount) (reason, msg string, reachable *bool) {
	if p := validateS3Mount(m.Spec); p != "" {
		return "InvalidSpec", p, nil
	}
	o := s3sync.Options{Endpoint: m.Spec.Endpoint, Region: m.Spec.Region, Bucket: m.Spec.Bucket, Prefix: m.Spec.Prefix,
		PathStyle: m.Spec.PathStyle, Dir: "/unused"}
	if ref := m.Spec.CredentialsSecretRef; ref != nil {
		sec := &corev1.Secret{}
		err := r.reader.Get(ctx, types.NamespacedName{Namespace: m.Namespace, Name: ref.Name}, sec)
		switch {
		case apierrors.IsNotFound(err):
			return "SecretNotFound", fmt.Sprintf("Secret %q not found", ref.Name), nil
		case err != nil:
			return "SecretUnreadable", fmt.Sprintf("Secret %q cannot be read: %v", ref.Name, apierrors.ReasonForError(err)), nil
		}
		idKey, secretKey := credentialKeys(ref)
		for _, k := range []string{idKey, secretKey} {
			if len(sec.Data[k]) == 0 {
				return "KeyNotFound", fmt.Sprintf("Secret %q has no key %q (or it is empty)", ref.Name, k), nil
			}
		}
		o.AccessKeyID, o.SecretAccessKey = string(sec.Data[idKey]), string(sec.Data[secretKey])
	}
	if err := r.o.Check(ctx, o); err != nil {
		// The message is s3sync's: operation, bucket, S3 error code — never a credential.
		return "BucketUnreachable", err.Error(), new(false)
	}
	if r.o.Store != nil {
		if err := r.recordModels(ctx, m, o); err != nil {
			return "ModelsNotRecorded", fmt.Sprintf("bucket %q reachable, but its models could not be recorded for the auth servers: %v",
				m.Spec.Bucket, err), new(true)
		}
		if err := r.recordDestination(ctx, m, o); err != nil {
			return "DestinationNotRecorded", fmt.Sprintf("bucket %q reachable, but it could not be recorded as a download destination: %v",
				m.Spec.Bucket, err), new(true)
		}
	}
	return "Reachable", "", new(true)
}

// recordDestination keeps (spec.modelDownloads) or forgets the mount as a download destination.
func (r *reconciler) recordDestination(ctx context.Context, m *authv1alpha1.S3Mount, o s3sync.Options) error {
	name := store.S3DestinationSetting(m.Namespace, m.Name)
	if !m.Spec.ModelDownloads || m.Spec.ReadOnly {
		if cur, ok, err := r.o.Store.SecretSetting(ctx, name); err == nil && (!ok || cur == "") {
			return nil // never one, or forgotten already: no write at every check
		}
		return r.o.Store.SetSecretSetting(ctx, name, "")
	}
	raw, err := json.Marshal(store.S3Destination{Endpoint: o.Endpoint, Region: o.Region, Bucket: o.Bucket, Prefix: o.Prefix, PathStyle: o.PathStyle,
		AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey})
	if err != nil {
		return err
	}
	if cur, ok, err := r.o.Store.SecretSetting(ctx, name); err == nil && ok && cur == string(raw) {
		return nil // unchanged: no write at every check
	}
	return r.o.Store.SetSecretSetting(ctx, name, string(raw))
}

// recordModels writes the models the bucket holds to the users database.
func (r *reconciler) recordModels(ctx context.Context, m *authv1alpha1.S3Mount, o s3sync.Options) error {
	o.ModelFolders = m.Spec.ModelFolders
	byFolder, err := r.o.ListModels(ctx, o)
	if err != nil {
		return err
	}
	var listed []store.ListedModel
	for f, names := range byFolder {
		for _, n := range names {
			listed = append(listed, store.ListedModel{Folder: f, Name: n})
		}
	}
	return r.o.Store.SetListedModels(ctx, mountSource(types.NamespacedName{Namespace: m.Namespace, Name: m.Name}), listed)
}

// mountSource names a mount's models in the users database.
func mountSource(key types.NamespacedName) string { return "S3Mount/" + key.Namespace + "/" + key.Name }

func setCondition(m *authv1alpha1.S3Mount, typ string, ok bool, reason, msg string) {
	conditions.Set(&m.Status.Conditions, metav1.Condition{Type: typ, Status: conditions.Status(ok), Reason: reason, Message: msg}, m.Generation)
}
